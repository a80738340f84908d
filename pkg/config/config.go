// Package config is Lokal's one settings schema: the same keys arrive as a
// Grafana datasource's jsonData (JSON), as provisioning YAML and as the CLI's
// config file, so a user learns them once. The scrape_configs part has
// Promtail's shape so an existing promtail.yaml section can be pasted in.
// Parsing is strict: an unknown key anywhere is an error naming its path,
// because a silently ignored Promtail key would silently lose logs.
//
// Operator controls (which directories may be read, where stores live) come
// from the process environment only, never from a datasource: see Operator.
package config

import (
	"fmt"
	"time"
)

// Defaults, in one place.
const (
	// DefaultRetention keeps a week, what Loki's own docs suggest for one box.
	DefaultRetention = 168 * time.Hour
	// DefaultMaxBytes bounds the store so a chatty service cannot fill the disk.
	DefaultMaxBytes = 10 << 30
	// DefaultPollInterval is the fallback for filesystems without inotify events.
	DefaultPollInterval = time.Second
	// DefaultMaxLineBytes truncates pathological lines (a 10 MB JSON blob) so a
	// single line cannot blow the memory budget; truncated lines are marked.
	DefaultMaxLineBytes = 256 << 10
	// DefaultMultilineMaxWait is Promtail's default for multiline max_wait_time.
	DefaultMultilineMaxWait = 3 * time.Second
	// DefaultMultilineMaxLines is Promtail's default for multiline max_lines.
	DefaultMultilineMaxLines = 128
	// MinPollInterval stops a typo (1ms) from burning a core on stat calls.
	MinPollInterval = 10 * time.Millisecond
	// MinMaxLineBytes keeps truncation from destroying ordinary lines.
	MinMaxLineBytes = 1 << 10
)

// Settings is the whole schema.
type Settings struct {
	Storage       Storage        `yaml:"storage" json:"storage"`
	ScrapeConfigs []ScrapeConfig `yaml:"scrape_configs" json:"scrape_configs"`
	// ScrapeConfigsYAML carries scrape_configs as one YAML text, for the
	// config editor's advanced box. Parse appends its jobs to ScrapeConfigs.
	ScrapeConfigsYAML string   `yaml:"scrape_configs_yaml,omitempty" json:"scrape_configs_yaml,omitempty"`
	PollInterval      Duration `yaml:"poll_interval" json:"poll_interval"`
	MaxLineBytes      ByteSize `yaml:"max_line_bytes" json:"max_line_bytes"`
	// Clients are Promtail's clients: remote Lokis that receive every
	// stored entry (clients.go).
	Clients []Client `yaml:"clients,omitempty" json:"clients,omitempty"`
}

// Storage says where and how long entries are kept.
type Storage struct {
	// Path is the store directory; empty means <data path>/<datasource uid>.
	// It must lie under the operator's data path.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Retention drops whole time partitions older than this; 0 keeps all.
	Retention *Duration `yaml:"retention,omitempty" json:"retention,omitempty"`
	// MaxBytes drops the oldest partitions beyond this size; 0 means no limit.
	MaxBytes *ByteSize `yaml:"max_bytes,omitempty" json:"max_bytes,omitempty"`
}

// ScrapeConfig is Promtail's scrape_configs entry, the file-tailing subset.
type ScrapeConfig struct {
	JobName        string         `yaml:"job_name" json:"job_name"`
	StaticConfigs  []StaticConfig `yaml:"static_configs" json:"static_configs"`
	PipelineStages []Stage        `yaml:"pipeline_stages,omitempty" json:"pipeline_stages,omitempty"`
}

// StaticConfig names files by glob (__path__, ** allowed) and their labels.
type StaticConfig struct {
	// Targets is accepted because every promtail.yaml has
	// "targets: [localhost]"; it has no meaning for local files.
	Targets []string          `yaml:"targets,omitempty" json:"targets,omitempty"`
	Labels  map[string]string `yaml:"labels" json:"labels"`
}

// Reserved label names of a static config.
const (
	LabelPath        = "__path__"
	LabelPathExclude = "__path_exclude__"
)

// Path returns the static config's glob.
func (s StaticConfig) Path() string { return s.Labels[LabelPath] }

// PathExclude returns the static config's exclusion glob, if any.
func (s StaticConfig) PathExclude() string { return s.Labels[LabelPathExclude] }

// StreamLabels returns the labels without the reserved __ ones.
func (s StaticConfig) StreamLabels() map[string]string {
	out := make(map[string]string, len(s.Labels))
	for k, v := range s.Labels {
		if len(k) >= 2 && k[:2] == "__" {
			continue
		}
		out[k] = v
	}
	return out
}

// RetentionOrDefault returns the effective retention (0 keeps everything).
func (s Storage) RetentionOrDefault() time.Duration {
	if s.Retention == nil {
		return DefaultRetention
	}
	return s.Retention.D()
}

// MaxBytesOrDefault returns the effective size limit (0 means none).
func (s Storage) MaxBytesOrDefault() int64 {
	if s.MaxBytes == nil {
		return DefaultMaxBytes
	}
	return int64(*s.MaxBytes)
}

// ApplyDefaults fills unset options with their defaults.
func (s *Settings) ApplyDefaults() {
	if s.Storage.Retention == nil {
		d := Duration(DefaultRetention)
		s.Storage.Retention = &d
	}
	if s.Storage.MaxBytes == nil {
		b := ByteSize(DefaultMaxBytes)
		s.Storage.MaxBytes = &b
	}
	if s.PollInterval == 0 {
		s.PollInterval = Duration(DefaultPollInterval)
	}
	if s.MaxLineBytes == 0 {
		s.MaxLineBytes = DefaultMaxLineBytes
	}
	for i := range s.ScrapeConfigs {
		applyStageDefaults(s.ScrapeConfigs[i].PipelineStages)
	}
	for i := range s.Clients {
		s.Clients[i].ApplyDefaults()
	}
}

func applyStageDefaults(st []Stage) {
	for i := range st {
		if m := st[i].Multiline; m != nil {
			if m.MaxWaitTime == 0 {
				m.MaxWaitTime = Duration(DefaultMultilineMaxWait)
			}
			if m.MaxLines == 0 {
				m.MaxLines = DefaultMultilineMaxLines
			}
		}
		if t := st[i].Timestamp; t != nil && t.ActionOnFailure == "" {
			t.ActionOnFailure = "fudge"
		}
		if m := st[i].Match; m != nil {
			if m.Action == "" {
				m.Action = "keep"
			}
			applyStageDefaults(m.Stages)
		}
	}
}

// Default returns settings with every default applied and no sources.
func Default() *Settings {
	s := &Settings{}
	s.ApplyDefaults()
	return s
}

// Validate checks everything that can be checked without touching the disk
// or the environment, and reports every problem it finds, not only the first.
func (s *Settings) Validate() error {
	var errs errList
	if s.PollInterval != 0 && s.PollInterval.D() < MinPollInterval {
		errs.addf("poll_interval: %s is below the minimum %s", s.PollInterval, MinPollInterval)
	}
	if s.MaxLineBytes != 0 && s.MaxLineBytes < MinMaxLineBytes {
		errs.addf("max_line_bytes: %s is below the minimum %d bytes", s.MaxLineBytes, MinMaxLineBytes)
	}
	jobs := map[string]int{}
	for i, sc := range s.ScrapeConfigs {
		p := fmt.Sprintf("scrape_configs[%d]", i)
		if sc.JobName == "" {
			errs.addf("%s.job_name: missing", p)
		} else if j, dup := jobs[sc.JobName]; dup {
			errs.addf("%s.job_name: %q is also the name of scrape_configs[%d]", p, sc.JobName, j)
		} else {
			jobs[sc.JobName] = i
		}
		if len(sc.StaticConfigs) == 0 {
			errs.addf("%s.static_configs: missing: name the files with labels.__path__", p)
		}
		for j, st := range sc.StaticConfigs {
			sp := fmt.Sprintf("%s.static_configs[%d].labels", p, j)
			if st.Path() == "" {
				errs.addf("%s.__path__: missing: give the files to read, e.g. /root/CosyVoice/logs/*.log", sp)
			}
			for k := range st.Labels {
				if k == LabelPath || k == LabelPathExclude {
					continue
				}
				if err := CheckLabelName(k); err != nil {
					errs.addf("%s.%s: %v", sp, k, err)
				}
			}
		}
		validateStages(&errs, p+".pipeline_stages", sc.PipelineStages)
	}
	validateClients(&errs, s.Clients)
	return errs.err()
}

// CheckLabelName reports whether n is a valid Prometheus/Loki label name.
func CheckLabelName(n string) error {
	if n == "" {
		return fmt.Errorf("empty label name")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("invalid label name %q: use letters, digits and _, not starting with a digit", n)
		}
	}
	return nil
}

// errList collects several problems into one error.
type errList []string

func (e *errList) addf(format string, args ...any) { *e = append(*e, fmt.Sprintf(format, args...)) }

func (e errList) err() error {
	switch len(e) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("invalid settings: %s", e[0])
	}
	msg := fmt.Sprintf("invalid settings (%d problems):", len(e))
	for _, s := range e {
		msg += "\n  - " + s
	}
	return fmt.Errorf("%s", msg)
}
