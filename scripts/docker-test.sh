#!/usr/bin/env bash
# `make docker-test`: builds the container image (Dockerfile) and checks it in a real Docker engine:
#   - it runs as 10001:10001 (a group created with gid 10001), and its binary is stripped and runs;
#   - the image's HEALTHCHECK becomes healthy, with HOST unset and with HOST=:: (Docker gives containers no
#     IPv6 by default), and stays healthy while Redis is unreachable (it checks liveness; readiness fails);
#   - wss:// works from a mounted certbot directory (live/ links into ../../archive), with the key granted to
#     the container's group (root:10001, mode 0640), verified by a client that trusts the test CA;
#   - `docker stop` drains: close 1001 to the client, exit 0 within the stop timeout;
#   - a key readable only by root stops the server with exit 2 and a message naming the file and the remedy.
# Without a Docker engine it says it skipped and exits 0, so that it can run anywhere.
# Every container and volume it makes carries a label and is removed on exit, whatever happened.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "docker-test: skipped: no Docker engine (docker info failed)"
    exit 0
fi
if ! command -v openssl >/dev/null 2>&1; then
    echo "docker-test: needs the openssl command to make a test certificate (apt-get install openssl)" >&2
    exit 1
fi

image=${DOCKER_TEST_IMAGE:-philote:docker-test}
run_id="philote-docker-test-$$"
label="philote-docker-test=$run_id"
volume="$run_id-tls"
secret="docker-test-secret-$$-$RANDOM$RANDOM"
work=$(mktemp -d)
# The test certificate's tree as certbot keeps it, mounted whole at /etc/letsencrypt.
domain=example.org
cert_file=/etc/letsencrypt/live/$domain/fullchain.pem
key_file=/etc/letsencrypt/live/$domain/privkey.pem
archive_key=/etc/letsencrypt/archive/$domain/privkey1.pem
test_ca=/etc/letsencrypt/test-ca.pem

cleanup() {
    local containers
    containers=$(docker ps -aq --filter "label=$label" 2>/dev/null || true)
    if [ -n "$containers" ]; then
        # Word splitting wanted: one argument per container id.
        # shellcheck disable=SC2086
        docker rm -f $containers >/dev/null 2>&1 || true
    fi
    docker volume rm -f "$volume" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

pass() { echo "docker-test: ok: $*"; }

# fail MESSAGE [CONTAINER]: the message, and the container's log when there is one to show.
fail() {
    echo "docker-test: FAIL: $1" >&2
    if [ $# -gt 1 ]; then
        echo "--- docker logs $2:" >&2
        docker logs "$2" >&2 2>&1 || true
    fi
    exit 1
}

# start NAME [docker run options...]: a detached server from the image, labelled for cleanup.
start() {
    local name="$run_id-$1"
    shift
    docker run -d --name "$name" --label "$label" -e SECRET="$secret" "$@" "$image" >/dev/null
    echo "$name"
}

# wait_healthy CONTAINER SECONDS: polls the health status the image's HEALTHCHECK sets.
wait_healthy() {
    local container=$1 deadline=$((SECONDS + $2)) status
    while true; do
        if [ "$(docker inspect -f '{{.State.Running}}' "$container")" != true ]; then
            fail "$container exited before it became healthy" "$container"
        fi
        status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$container")
        [ "$status" = healthy ] && return 0
        [ "$SECONDS" -lt "$deadline" ] || fail "$container not healthy after $2 s (status: ${status:-none})" "$container"
        sleep 1
    done
}

# wait_log CONTAINER TEXT SECONDS: polls the container's log (stdout and stderr) for TEXT.
wait_log() {
    local container=$1 text=$2 deadline=$((SECONDS + $3))
    # grep without -q reads the whole log: -q would stop early and, under pipefail, fail docker logs with SIGPIPE.
    until docker logs "$container" 2>&1 | grep -F -- "$text" >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no \"$text\" in the log of $container after $3 s" "$container"
        sleep 0.5
    done
}

# --- the image -----------------------------------------------------------------------------------------------

echo "docker-test: building $image"
docker build -t "$image" .

user=$(docker image inspect -f '{{.Config.User}}' "$image")
[ "$user" = "10001:10001" ] || fail "the image's USER is \"$user\", not 10001:10001"
ids=$(docker run --rm --label "$label" --entrypoint id "$image")
[ "$ids" = "uid=10001(philote) gid=10001(philote) groups=10001(philote)" ] || fail "runs as: $ids"
group=$(docker run --rm --label "$label" --entrypoint getent "$image" group 10001)
[ "$group" = "philote:x:10001:" ] || fail "group 10001 is \"$group\""
pass "runs as $ids"

docker run --rm --label "$label" --entrypoint cat "$image" /usr/local/bin/philote >"$work/philote"
size=$(wc -c <"$work/philote")
if command -v file >/dev/null 2>&1; then
    description=$(file -b "$work/philote")
    case "$description" in
        *", stripped"*) ;;
        *) fail "the binary is not stripped: $description" ;;
    esac
elif command -v readelf >/dev/null 2>&1; then
    if readelf -S --wide "$work/philote" | grep -F '.symtab' >/dev/null; then
        fail "the binary is not stripped: it has a .symtab section"
    fi
else
    fail "needs file or readelf to see whether the binary is stripped (apt-get install file)"
fi
version=$(docker run --rm --label "$label" "$image" --version)
[ -n "$version" ] || fail "philote --version printed nothing"
pass "binary stripped ($size bytes), philote --version: $version"

healthcheck=$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$image")
case "$healthcheck" in
    *'"health","--path","/livez"'*) ;;
    *) fail "the HEALTHCHECK does not ask /livez: $healthcheck" ;;
esac

# --- health ----------------------------------------------------------------------------------------------------

# The image's own interval (10 s) for the first container; the others check every 2 s to save time. The
# command is always the image's.
plain=$(start plain)
wait_healthy "$plain" 60
pass "HEALTHCHECK healthy with the image's settings"

wildcard=$(start wildcard --health-interval=2s -e HOST=::)
wait_healthy "$wildcard" 60
wait_log "$wildcard" "address=ws://[::]:6380" 10
pass "healthy with HOST=:: (start-up line: ws://[::]:6380)"

no_redis=$(start no-redis --health-interval=2s -e REDIS_URL=redis://127.0.0.1:1)
wait_healthy "$no_redis" 60
if readiness=$(docker exec "$no_redis" philote health 2>&1); then
    fail "/readyz answered 200 with Redis unreachable: $readiness" "$no_redis"
fi
case "$readiness" in
    *503*) ;;
    *) fail "/readyz with Redis unreachable: $readiness" "$no_redis" ;;
esac
pass "healthy (live) while Redis is unreachable; not ready: $readiness"
docker rm -f "$plain" "$wildcard" "$no_redis" >/dev/null

# --- wss:// from a mounted certbot directory ----------------------------------------------------------------

# A test CA and a certificate for localhost, laid out as certbot does: live/ holds relative links into archive/.
pki="$work/pki"
tree="$work/letsencrypt"
mkdir -p "$pki" "$tree/archive/$domain" "$tree/live/$domain"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/ca.key" -out "$pki/ca.pem" \
    -days 2 -subj "/CN=Philote docker-test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tree/archive/$domain/privkey1.pem" \
    -out "$pki/leaf.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\nbasicConstraints = critical, CA:FALSE\n' >"$pki/leaf.ext"
openssl x509 -req -in "$pki/leaf.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/leaf.ext" -out "$tree/archive/$domain/fullchain1.pem" 2>/dev/null
ln -s "../../archive/$domain/fullchain1.pem" "$tree/live/$domain/fullchain.pem"
ln -s "../../archive/$domain/privkey1.pem" "$tree/live/$domain/privkey.pem"
cp "$pki/ca.pem" "$tree/test-ca.pem"

# A volume, not a bind mount, so that the files' owner and mode are what the test sets (a root-owned key
# granted to group 10001, as the README says to do) whoever runs this and wherever the engine is.
docker volume create --label "$label" "$volume" >/dev/null
tar -C "$tree" -cf - . | docker run --rm -i --label "$label" --user 0:0 -v "$volume:/target" --entrypoint tar \
    "$image" -xf - -C /target
docker run --rm --label "$label" --user 0:0 -v "$volume:/etc/letsencrypt" --entrypoint sh "$image" -c \
    "chown -R 0:0 /etc/letsencrypt && chmod -R go-w,a+rX /etc/letsencrypt \
     && chgrp 10001 $archive_key && chmod 0640 $archive_key"

tls=$(start tls --health-interval=2s --stop-timeout 15 -v "$volume:/etc/letsencrypt:ro" \
    -e TLS_CERT_FILE="$cert_file" -e TLS_KEY_FILE="$key_file")
wait_healthy "$tls" 60
wait_log "$tls" "address=wss://0.0.0.0:6380" 10

# A client in the server's network namespace that trusts only the test CA and checks the name (localhost).
client=(--label "$label" --no-healthcheck --network "container:$tls" -v "$volume:/etc/letsencrypt:ro"
    -e SECRET="$secret" "$image" client --url wss://localhost:6380/ --channel docker-test --ca "$test_ca")
listener="$run_id-listener"
docker run -d --name "$listener" "${client[@]}" --listen --verbose >/dev/null
wait_log "$listener" "connected to" 20
message="hello over wss $$"
echo "$message" | docker run --rm -i "${client[@]}" || fail "publishing over wss:// failed" "$tls"
wait_log "$listener" "\"data\":\"$message\"" 20
pass "wss:// from the mounted certbot directory: published and delivered, chain verified"

# --- docker stop drains --------------------------------------------------------------------------------------

started=$SECONDS
docker stop -t 15 "$tls" >/dev/null
took=$((SECONDS - started))
code=$(docker inspect -f '{{.State.ExitCode}}' "$tls")
[ "$code" = 0 ] || fail "docker stop: exit status $code (137: killed before the drain ended)" "$tls"
[ "$took" -lt 15 ] || fail "docker stop took $took s, the whole stop timeout" "$tls"
wait_log "$tls" 'msg="shutting down" signal=SIGTERM' 1
wait_log "$tls" 'msg=stopped' 1
wait_log "$listener" "1001" 10
pass "docker stop drained in $took s: close 1001 to the client, exit 0"
docker rm -f "$tls" "$listener" >/dev/null

# --- a key the container's user cannot read --------------------------------------------------------------------

docker run --rm --label "$label" --user 0:0 -v "$volume:/etc/letsencrypt" --entrypoint sh "$image" -c \
    "chgrp 0 $archive_key && chmod 0600 $archive_key"
# Detached and polled, so that a server that wrongly starts cannot hang this script.
unreadable=$(start unreadable-key -v "$volume:/etc/letsencrypt:ro" -e TLS_CERT_FILE="$cert_file" \
    -e TLS_KEY_FILE="$key_file")
deadline=$((SECONDS + 30))
while [ "$(docker inspect -f '{{.State.Running}}' "$unreadable")" = true ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the server still runs with a key it cannot read" "$unreadable"
    sleep 0.5
done
status=$(docker inspect -f '{{.State.ExitCode}}' "$unreadable")
output=$(docker logs "$unreadable" 2>&1)
[ "$status" = 2 ] || fail "a key readable only by root: exit status $status, not 2: $output"
for expected in "TLS_KEY_FILE=$key_file" "permission denied for uid 10001 gid 10001" "chmod 640"; do
    case "$output" in
        *"$expected"*) ;;
        *) fail "a key readable only by root: no \"$expected\" in: $output" ;;
    esac
done
pass "a key readable only by root: exit 2 with: $output"

echo "docker-test: all checks passed"
