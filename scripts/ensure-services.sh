#!/usr/bin/env bash
# Make sure the services the test suite talks to are up (RabbitMQ for the job brokers
# too); start any that is down.
# Exits non-zero, naming the service, when one cannot be reached.
set -uo pipefail

reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_postgresql() { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start; }
start_mariadb() { start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; }
start_redis() {
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

start_rabbitmq() { rabbitmq-server -detached; }

failed=0
for entry in postgresql:5432 mariadb:3306 redis:6379 rabbitmq:5672; do
  name=${entry%%:*}
  port=${entry##*:}
  if reachable "$port"; then
    continue
  fi
  echo "ensure-services: $name is down on port $port; starting it" >&2
  "start_$name" >&2 || true
  for _ in $(seq 1 60); do
    reachable "$port" && break
    sleep 0.5
  done
  if ! reachable "$port"; then
    echo "ensure-services: FAILED: $name is still unreachable on 127.0.0.1:$port" >&2
    failed=1
  fi
done
exit "$failed"
