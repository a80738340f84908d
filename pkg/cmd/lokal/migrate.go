package main

import (
	"context"
	"fmt"
	"os"

	"github.com/lokal-logs/lokal/pkg/dsmigrate"
)

const migrateUsage = `usage: lokal migrate-dashboards --from-uid A --to-uid B [--to-type loki] [-w] FILE...

Points dashboards (JSON) and alert rule files (JSON or YAML) at another
datasource: every reference to the Lokal datasource with uid A becomes the
datasource with uid B (type loki unless --to-type says otherwise). The
queries stay as they are: Lokal's are Loki's. One file is written to
standard output; with -w each file is rewritten in place.
`

func cmdMigrateDashboards(_ context.Context, args []string, e env) error {
	fs := newFlags("migrate-dashboards", e)
	from := fs.String("from-uid", "", "uid of the Lokal datasource the files use")
	to := fs.String("to-uid", "", "uid of the datasource they should use")
	fromType := fs.String("from-type", dsmigrate.LokalType, "plugin id of the old datasource")
	toType := fs.String("to-type", dsmigrate.LokiType, "plugin id of the new datasource")
	write := fs.Bool("w", false, "rewrite the files in place")
	fs.Usage = func() { fmt.Fprint(e.stderr, migrateUsage); fs.PrintDefaults() }
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *from == "" || *to == "" || len(files) == 0 || (len(files) > 1 && !*write) {
		fs.Usage()
		return errUsage
	}
	o := dsmigrate.Options{FromUID: *from, FromType: *fromType, ToUID: *to, ToType: *toType}
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		out, n, err := dsmigrate.Rewrite(f, in, o)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: no reference to the %s datasource with uid %q (check --from-uid)", f, *fromType, *from)
		}
		if *write {
			fi, err := os.Stat(f)
			if err != nil {
				return err
			}
			if err := os.WriteFile(f, out, fi.Mode().Perm()); err != nil {
				return err
			}
		} else if _, err := e.stdout.Write(out); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "%s: %d datasource references now point at %s (%s)\n", f, n, *to, *toType)
	}
	return nil
}
