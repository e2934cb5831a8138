#!/usr/bin/env bash
# Creates what the stack needs and git never holds, in ./secrets (or
# $SECRETS_DIR): random passwords for Herald's users and Grafana's admin,
# a private CA and Herald's TLS certificate, and Herald's web config
# (TLS + basic auth with bcrypt hashes). Existing files are kept, so it is
# safe to run again; delete a file to regenerate it.
#
# Put your SMTP password in secrets/smtp_password, your Slack incoming
# webhook URL in secrets/slack_webhook_url and your PagerDuty service's
# integration key in secrets/pagerduty_routing_key (placeholders are
# written).
# HERALD_TLS_SANS adds names to the certificate, e.g.
#   HERALD_TLS_SANS="DNS:alerts.example.com,IP:203.0.113.7" ./init-secrets.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${SECRETS_DIR:-$here/secrets}"
if [ -n "${HERALD_BIN:-}" ]; then
  HERALD_BIN="$(cd "$(dirname "$HERALD_BIN")" && pwd)/$(basename "$HERALD_BIN")"
fi
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"

command -v openssl >/dev/null || { echo "init-secrets.sh: openssl is required" >&2; exit 1; }

random_password() { openssl rand -base64 32 | tr -d '/+=\n' | cut -c1-24; }

for f in herald_admin_password herald_prometheus_password grafana_admin_password; do
  [ -s "$f" ] || { printf '%s' "$(random_password)" > "$f"; echo "created $dir/$f"; }
done
[ -s smtp_password ] || { echo "change-me" > smtp_password; echo "WRITE your SMTP password into $dir/smtp_password"; }
[ -s slack_webhook_url ] || {
  echo "https://hooks.slack.com/services/CHANGE/ME/NOW" > slack_webhook_url
  echo "WRITE your Slack incoming-webhook URL into $dir/slack_webhook_url"
}
[ -s pagerduty_routing_key ] || {
  echo "change-me-pagerduty-integration-key" > pagerduty_routing_key
  echo "WRITE your PagerDuty integration key (Events API v2) into $dir/pagerduty_routing_key"
}

if [ ! -s ca.pem ] || [ ! -s ca.key ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 \
    -keyout ca.key -out ca.pem -subj "/CN=Herald stack CA" 2>/dev/null
  rm -f herald.pem herald.key
  echo "created the stack's CA ($dir/ca.pem)"
fi
if [ ! -s herald.pem ] || [ ! -s herald.key ]; then
  sans="DNS:herald,DNS:localhost,IP:127.0.0.1${HERALD_TLS_SANS:+,$HERALD_TLS_SANS}"
  openssl req -newkey rsa:3072 -nodes -sha256 -keyout herald.key -out herald.csr \
    -subj "/CN=herald" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans" > herald.ext
  openssl x509 -req -sha256 -days 825 -in herald.csr -CA ca.pem -CAkey ca.key \
    -CAcreateserial -out herald.pem -extfile herald.ext 2>/dev/null
  rm -f herald.csr herald.ext
  echo "created Herald's TLS certificate for $sans"
fi
# The replicas' certificate for gossip (--cluster.tls-config): both show
# it as server and as client, and accept only peers the stack's CA signed.
# Peers are dialled by container IP, so the name checked is herald-cluster.
if [ ! -s cluster.pem ] || [ ! -s cluster.key ]; then
  openssl req -newkey rsa:3072 -nodes -sha256 -keyout cluster.key -out cluster.csr \
    -subj "/CN=herald-cluster" 2>/dev/null
  printf 'subjectAltName=DNS:herald-cluster\nextendedKeyUsage=serverAuth,clientAuth\n' > cluster.ext
  openssl x509 -req -sha256 -days 825 -in cluster.csr -CA ca.pem -CAkey ca.key \
    -CAcreateserial -out cluster.pem -extfile cluster.ext 2>/dev/null
  rm -f cluster.csr cluster.ext
  echo "created the replicas' gossip certificate"
fi
if [ ! -s cluster-tls.yml ]; then
  cat > cluster-tls.yml <<YAML
# Herald's --cluster.tls-config (Alertmanager's format), written by
# init-secrets.sh: replicas gossip over mutual TLS with the stack's CA.
tls_server_config:
  cert_file: /run/secrets/herald_cluster_cert
  key_file: /run/secrets/herald_cluster_key
  client_ca_file: /run/secrets/herald_ca.pem
  client_auth_type: RequireAndVerifyClientCert
tls_client_config:
  cert_file: /run/secrets/herald_cluster_cert
  key_file: /run/secrets/herald_cluster_key
  ca_file: /run/secrets/herald_ca.pem
  server_name: herald-cluster
YAML
  echo "created $dir/cluster-tls.yml"
fi

# bcrypt hashes: Herald's own subcommand when a binary is at hand, else
# htpasswd, else the image built by docker compose.
hash() {
  local bin="${HERALD_BIN:-}"
  [ -n "$bin" ] || bin="$(command -v herald || true)"
  if [ -z "$bin" ] && [ -x "$here/../target/release/herald" ]; then
    bin="$here/../target/release/herald"
  fi
  if [ -n "$bin" ]; then
    printf '%s\n' "$1" | "$bin" hash-password
  elif command -v htpasswd >/dev/null; then
    htpasswd -nbBC 10 "" "$1" | tr -d ':\n'
    echo
  elif command -v docker >/dev/null; then
    # The image `docker compose build` made (see docker-compose.yml).
    printf '%s\n' "$1" | docker run --rm -i --entrypoint /bin/herald \
      "${HERALD_IMAGE:-herald:local}" hash-password
  else
    echo "init-secrets.sh: need a herald binary (HERALD_BIN), htpasswd or docker to hash passwords" >&2
    exit 1
  fi
}

if [ ! -s web.yml ]; then
  admin_hash="$(hash "$(cat herald_admin_password)")"
  prom_hash="$(hash "$(cat herald_prometheus_password)")"
  cat > web.yml <<YAML
# Herald's --web.config.file (exporter-toolkit format), written by
# init-secrets.sh. Users: admin (people, password in herald_admin_password)
# and prometheus (alerts and scrapes, herald_prometheus_password).
tls_server_config:
  cert_file: /run/secrets/herald_tls_cert
  key_file: /run/secrets/herald_tls_key
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
    X-Frame-Options: deny
basic_auth_users:
  admin: '$admin_hash'
  prometheus: '$prom_hash'
YAML
  echo "created $dir/web.yml"
fi

# Compose mounts these files into containers that run as other users.
chmod 644 -- *
chmod 600 ca.key
echo "secrets ready in $dir"
