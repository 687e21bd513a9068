#!/usr/bin/env bash
# Run Debian's apache2 or nginx with a site from conf/, on a loopback address, for the tests.
#
#   reverse_proxy.sh start apache2|nginx LISTEN_ADDR BACKEND_HOST:PORT WORKDIR STORE_DIR
#   reverse_proxy.sh stop  apache2|nginx WORKDIR
#
# The site file is used as shipped, with `*:80`/`listen 80` bound to LISTEN_ADDR, the backend
# 127.0.0.1:8084 replaced by BACKEND and the package's identity store folder by STORE_DIR.
# Everything else (pid, logs) lives in WORKDIR.
# Installs the server package when it is missing and we are root (as .ci/run does).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
conf="$(cd "$here/../../conf" && pwd)"
action="$1"; server="$2"

ensure_installed() {
    local bin="/usr/sbin/$server"
    if [ ! -x "$bin" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$server" >/dev/null
        fi
    fi
    [ -x "$bin" ] || { echo "$server is not installed" >&2; exit 3; }
}

wait_for_port() {
    local addr="$1"
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/$addr/80") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "$server did not open $addr:80" >&2
    return 1
}

PACKAGE_STORE=/var/lib/bitdust/.bitdust/identityserver

start_apache2() {
    local listen="$1" backend="$2" work="$3" store="$4"
    local mods=/usr/lib/apache2/modules
    sed -e "s/<VirtualHost \*:80>/<VirtualHost $listen:80>/" \
        -e "s#http://127.0.0.1:8084/#http://$backend/#g" \
        -e "s#$PACKAGE_STORE#$store#g" \
        "$conf/apache2/bitdust-identity-server.conf" >"$work/site.conf"
    cat >"$work/apache2.conf" <<CONF
ServerRoot /etc/apache2
DefaultRuntimeDir $work
PidFile $work/apache2.pid
Mutex file:$work default
ErrorLog $work/error.log
LogLevel warn
ServerName $listen
Listen $listen:80
User www-data
Group www-data
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule mime_module $mods/mod_mime.so
TypesConfig /dev/null
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_http_module $mods/mod_proxy_http.so
LoadModule rewrite_module $mods/mod_rewrite.so
LoadModule reqtimeout_module $mods/mod_reqtimeout.so
Define APACHE_LOG_DIR $work
Include $work/site.conf
CONF
    /usr/sbin/apache2 -f "$work/apache2.conf" -k start
}

start_nginx() {
    local listen="$1" backend="$2" work="$3" store="$4"
    sed -e "s/listen 80;/listen $listen:80;/" \
        -e "s/server 127.0.0.1:8084;/server $backend;/" \
        -e "s#$PACKAGE_STORE#$store#g" \
        "$conf/nginx/bitdust-identity-server.conf" >"$work/site.conf"
    mkdir -p "$work/tmp"
    cat >"$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log $work/access.log;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    include $work/site.conf;
}
CONF
    /usr/sbin/nginx -c "$work/nginx.conf" -p "$work" -g "daemon on;"
}

stop_server() {
    local work="$1" pidfile="$1/$server.pid"
    [ -f "$pidfile" ] || return 0
    local pid; pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

case "$action" in
    start)
        listen="$3"; backend="$4"; work="$5"; store="$6"
        [ "$(id -u)" = 0 ] || { echo "port 80 needs root" >&2; exit 3; }
        ensure_installed
        mkdir -p "$work"
        chmod 755 "$work"
        "start_${server}" "$listen" "$backend" "$work" "$store"
        wait_for_port "$listen"
        ;;
    stop)
        stop_server "$3"
        ;;
    *)
        echo "usage: $0 start|stop apache2|nginx ..." >&2; exit 2 ;;
esac
