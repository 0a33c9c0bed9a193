#!/bin/sh
# docker-compose.yml's broker: Apache Kafka serving only signed-in clients.
#
# The image's own start script cannot run it: it formats the storage without SCRAM
# credentials, and the first one (the admin's) must be in the metadata before any client, or
# the broker itself, can sign in. This writes the broker's settings with the admin's password
# into files only the broker's user can read, formats the storage once with that credential,
# and runs the broker. The apps' identities and their ACLs are made afterwards by the one-shot
# `kafka-setup` service (python -m shared.kafka_acls), signed in as the admin.
set -eu

: "${KAFKA_ADMIN_PASSWORD:?set VIGIL_KAFKA_ADMIN_PASSWORD (README.md, Running on Apache Kafka)}"
: "${CLUSTER_ID:?the KRaft cluster id}"
# It goes between quotes in JAAS lines and brackets in --add-scram.
case $KAFKA_ADMIN_PASSWORD in
*[!A-Za-z0-9]*)
  echo "KAFKA_ADMIN_PASSWORD: letters and digits only (openssl rand -hex 32)" >&2
  exit 2
  ;;
esac

kafka_home=${KAFKA_HOME:-/opt/kafka}
config_dir=${VIGIL_KAFKA_CONFIG_DIR:-/etc/vigil/kafka}
run_dir=${VIGIL_KAFKA_RUN_DIR:-/tmp/vigil-kafka}
password=$KAFKA_ADMIN_PASSWORD
scram=org.apache.kafka.common.security.scram.ScramLoginModule
plain=org.apache.kafka.common.security.plain.PlainLoginModule

umask 077
mkdir -p "$run_dir"
{
  cat "$config_dir/broker.properties" "$config_dir/secured.properties" "$config_dir/node.properties"
  printf '\n# The admin, as the broker signs in to itself and as the controller'"'"'s only user\n'
  printf 'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=%s required username="admin" password="%s";\n' \
    "$scram" "$password"
  printf 'listener.name.controller.plain.sasl.jaas.config=%s required username="admin" password="%s" user_admin="%s";\n' \
    "$plain" "$password" "$password"
} >"$run_dir/server.properties"
# The healthcheck's client (kafka-broker-api-versions.sh --command-config).
{
  printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n'
  printf 'sasl.jaas.config=%s required username="admin" password="%s";\n' "$scram" "$password"
} >"$run_dir/admin.properties"

data_dir=$(sed -n 's/^log\.dirs=//p' "$config_dir/node.properties")
if [ ! -e "$data_dir/meta.properties" ]; then
  # On first start only. The storage tool takes a credential on its command line alone, so
  # the admin's password is in this one process's arguments for the seconds it runs.
  "$kafka_home/bin/kafka-storage.sh" format --cluster-id "$CLUSTER_ID" \
    --config "$run_dir/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$password]"
fi
exec "$kafka_home/bin/kafka-server-start.sh" "$run_dir/server.properties"
