#!/usr/bin/env bash
# The compose broker (apache/kafka image): deploy/kafka/server.properties filled in from the environment, every
# fivecogs principal's SCRAM-SHA-512 credential added when the storage is formatted (first start), then the
# ACLs of deploy/kafka/acls.txt (generated from fivecogs_ops.principals; a test keeps it current).
# Passwords come from FIVECOGS_KAFKA_PASSWORD_<USER> (service-inputs -> SERVICE_INPUTS); none is printed.
set -euo pipefail
here=/fivecogs
bin=/opt/kafka/bin
data=/var/lib/kafka/data
conf=/tmp/fivecogs/server.properties
admin_conf=/tmp/fivecogs/admin.properties
mkdir -p /tmp/fivecogs && chmod 700 /tmp/fivecogs
umask 077

password_of() {
  local name="FIVECOGS_KAFKA_PASSWORD_$(echo "$1" | tr '[:lower:]-' '[:upper:]_')"
  [[ -n "${!name:-}" ]] || { echo "set $name (the Kafka password of $1)" >&2; exit 2; }
  printf '%s' "${!name}"
}

users=(admin $(grep -o 'User:[a-z0-9.-]*' "$here/acls.txt" | cut -d: -f2 | sort -u))
admin_password="$(password_of admin)"
external="listener.name.external.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
sed -e "s|\${KAFKA_PORT}|9092|g" -e "s|\${ADVERTISED_HOST}|kafka|g" -e "s|\${ADVERTISED_PORT}|9092|g" \
    -e "s|\${LISTEN_HOST}|0.0.0.0|g" -e "s|\${CONTROLLER_PORT}|9093|g" -e "s|\${DATA_DIR}|$data|g" \
    -e "s|\${EXTRA_LISTENERS}|,EXTERNAL://0.0.0.0:29092|g" -e "s|\${EXTRA_ADVERTISED}|,EXTERNAL://localhost:29092|g" \
    -e "s|\${EXTRA_PROTOCOLS}|,EXTERNAL:SASL_PLAINTEXT|g" -e "s|\${TLS_SETTINGS}|$external|g" \
    -e "s|\${ADMIN_PASSWORD}|$admin_password|g" "$here/server.properties" > "$conf"
cat > "$admin_conf" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_password";
PROPS

if [[ ! -f "$data/meta.properties" ]]; then
  scram=()
  for user in "${users[@]}"; do scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(password_of "$user")]"); done
  "$bin/kafka-storage.sh" format --standalone -t "${CLUSTER_ID:?}" -c "$conf" "${scram[@]}" > /dev/null
fi

"$bin/kafka-server-start.sh" "$conf" &
broker=$!
trap 'kill -TERM "$broker"; wait "$broker"' TERM INT
until "$bin/kafka-broker-api-versions.sh" --bootstrap-server localhost:9092 --command-config "$admin_conf" > /dev/null 2>&1; do
  kill -0 "$broker" 2> /dev/null || exit 1
  sleep 2
done
if [[ ! -f "$data/fivecogs-acls.sha256" ]] || ! sha256sum -c --status "$data/fivecogs-acls.sha256"; then
  while read -r line; do
    # shellcheck disable=SC2086  # each line is a list of arguments
    "$bin/kafka-acls.sh" --bootstrap-server localhost:9092 --command-config "$admin_conf" --add --force $line > /dev/null
  done < "$here/acls.txt"
  sha256sum "$here/acls.txt" > "$data/fivecogs-acls.sha256"
fi
touch /tmp/fivecogs/ready  # the healthcheck: broker up and every ACL in place
wait "$broker"
