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
# (go tool mage grafanaE2E) runs against, with its settings: unsigned loading
# for our id only, the [plugin.lokal-logql-datasource] section and
# provisioning from /etc/grafana/provisioning.
FROM grafana/grafana:12.4.0 AS grafana
# Plugins live outside /var/lib/grafana: docker-compose keeps that directory
# in a volume, and a volume created by an older image would hide a rebuilt
# plugin behind its first copy.
ENV GF_PATHS_PLUGINS=/opt/lokal/plugins \
    GF_PATHS_PROVISIONING=/etc/grafana/provisioning \
    GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=lokal-logql-datasource
COPY --from=frontend /src/dist /opt/lokal/plugins/lokal-logql-datasource
COPY --from=backend /src/dist/gpx_lokal_linux_* /src/dist/plugin.json /opt/lokal/plugins/lokal-logql-datasource/
USER root
# The operator's settings: Grafana hands [plugin.<id>] keys to the plugin
# process as GF_PLUGIN_<KEY> environment variables. data_path is inside the
# grafana-data volume, so the store outlives the container.
RUN printf '\n[plugin.lokal-logql-datasource]\nallowed_paths = /var/log/cosyvoice\ndata_path = /var/lib/grafana/lokal\n' >> /etc/grafana/grafana.ini \
 && chmod 0755 /opt/lokal/plugins/lokal-logql-datasource/gpx_lokal_linux_*
USER 472
