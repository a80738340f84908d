# Builds Lokal inside containers and installs it into the official Grafana
# image. `docker compose up --build` uses the "grafana" and "lokal" stages.

# --- backend: plugin executable and CLI, built with the project's Magefile
FROM golang:1.26 AS backend
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go tool mage -v backend cli

# --- frontend: dist/module.js and the static assets
FROM node:22 AS frontend
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

# --- the CLI alone, for the live sample writer
FROM debian:bookworm-slim AS lokal
COPY --from=backend /src/dist/lokal /usr/local/bin/lokal
ENTRYPOINT ["/usr/local/bin/lokal"]

# --- Grafana with the plugin installed: the version the real-Grafana check
# (go tool mage grafanaE2E) runs against
FROM grafana/grafana:12.4.0 AS grafana
COPY --from=frontend /src/dist /var/lib/grafana/plugins/lokal-logql-datasource
COPY --from=backend /src/dist/gpx_lokal_linux_* /src/dist/plugin.json /var/lib/grafana/plugins/lokal-logql-datasource/
USER root
# The operator's settings: Grafana hands [plugin.<id>] keys to the plugin
# process as GF_PLUGIN_<KEY> environment variables.
RUN printf '\n[plugin.lokal-logql-datasource]\nallowed_paths = /var/log/cosyvoice\ndata_path = /var/lib/grafana/lokal\n' >> /etc/grafana/grafana.ini \
 && chmod 0755 /var/lib/grafana/plugins/lokal-logql-datasource/gpx_lokal_linux_*
USER 472
ENV GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=lokal-logql-datasource
