#!/usr/bin/env bash
# An internet in network namespaces for tests/internet: one bridge with public addresses, and behind it
# each host in its own namespace behind its own router namespace.
#
#   net.sh up WORKDIR     build it (after tearing down any leftover of an earlier run)
#   net.sh down WORKDIR   stop miniupnpd and remove every namespace it made
#
# Every name starts with nat- (namespaces) so nothing collides with other tests on the machine.
# Routers (LAN side .1, WAN side the public address on the bridge 11.0.0.0/24):
#   one-to-one NAT, as a cloud VM has: every port of the public address reaches the host's
#     private address, the host's traffic leaves from the public one (and may reach itself by it)
#   napt-forward: a home router, masquerade, TCP 7771 and UDP 14441 forwarded to the host
#   napt-upnp:    a home router running Debian's miniupnpd (UPnP IGD and NAT-PMP) on its LAN side
#   napt:         a home router with nothing forwarded
# 11.0.0.0/8 is used because miniupnpd refuses private and documentation ranges as an outside address;
# nothing here is routed beyond the bridge.
set -euo pipefail
action="$1"; work="${2:-/tmp/nat-internet}"
PREFIX=nat-
# name  kind          public      lan subnet (host .2, router .1)
HOSTS=(
    "a   one-to-one   11.0.0.10   10.10.0"
    "b   one-to-one   11.0.0.11   10.11.0"
    "c   one-to-one   11.0.0.12   10.12.0"
    "s1  napt-forward 11.0.0.21   192.168.21"
    "s2  napt-upnp    11.0.0.22   192.168.22"
    "u   napt         11.0.0.30   192.168.30"
)

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

down() {
    if [ -f "$work/miniupnpd.pid" ]; then
        kill "$(cat "$work/miniupnpd.pid")" 2>/dev/null || true
        rm -f "$work/miniupnpd.pid"
    fi
    for line in "${HOSTS[@]}"; do
        read -r name _ <<<"$line"
        for ns in "${PREFIX}$name" "${PREFIX}r$name"; do
            if ip netns list | grep -qw "^$ns"; then
                # processes left in it (a node that did not stop) go with it
                for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
                ip netns delete "$ns"
            fi
        done
    done
    if ip netns list | grep -qw "^${PREFIX}inet"; then ip netns delete "${PREFIX}inet"; fi
}

router_rules() {
    local kind="$1" public="$2" lan="$3"
    case "$kind" in
    one-to-one)
        cat <<NFT
table ip nat {
    chain prerouting {
        type nat hook prerouting priority -100;
        ip daddr $public dnat to $lan.2
    }
    chain postrouting {
        type nat hook postrouting priority 100;
        oifname "wan0" ip saddr $lan.2 snat to $public
        oifname "lan0" ip saddr $lan.0/24 ip daddr $lan.2 snat to $public
    }
}
NFT
        ;;
    napt-forward | napt)
        local forward=""
        # the guide's ports: peers reach the node on TCP 7771 and find it through the DHT on UDP 14441
        [ "$kind" = napt-forward ] && forward="iifname \"wan0\" tcp dport 7771 dnat to $lan.2:7771
        iifname \"wan0\" udp dport 14441 dnat to $lan.2:14441"
        cat <<NFT
table ip nat {
    chain prerouting {
        type nat hook prerouting priority -100;
        $forward
    }
    chain postrouting {
        type nat hook postrouting priority 100;
        oifname "wan0" masquerade
    }
}
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lan0" accept
        ct status dnat accept
    }
}
NFT
        ;;
    napt-upnp)
        # the tables and chains miniupnpd fills (its defaults: table inet filter, chains miniupnpd,
        # prerouting_miniupnpd, postrouting_miniupnpd)
        cat <<NFT
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lan0" accept
        jump miniupnpd
    }
    chain miniupnpd { }
    chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "wan0" masquerade
    }
    chain prerouting_miniupnpd { }
    chain postrouting_miniupnpd { }
}
NFT
        ;;
    esac
}

start_miniupnpd() {
    local ns="$1" lan="$2"
    cat >"$work/miniupnpd.conf" <<CONF
ext_ifname=wan0
listening_ip=lan0
http_port=5555
enable_upnp=yes
enable_natpmp=yes
secure_mode=yes
system_uptime=yes
notify_interval=30
clean_ruleset_interval=600
uuid=3dd75d8d-8ed0-417f-98ee-4688a4519a13
lease_file=$work/miniupnpd.leases
upnp_table_name=filter
upnp_nat_table_name=filter
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 $lan.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
    # -d: stay in the foreground (logs to stderr), so the test's teardown ends it by its pid
    in_ns "$ns" /usr/sbin/miniupnpd -d -f "$work/miniupnpd.conf" -P "$work/miniupnpd.run.pid" \
        >"$work/miniupnpd.log" 2>&1 &
    echo $! >"$work/miniupnpd.pid"
    for _ in $(seq 1 100); do
        if in_ns "$ns" bash -c "exec 3<>/dev/tcp/$lan.1/5555" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "miniupnpd did not start:" >&2
    cat "$work/miniupnpd.log" >&2
    return 1
}

up() {
    down
    mkdir -p "$work"
    ip netns add "${PREFIX}inet"
    in_ns "${PREFIX}inet" ip link set lo up
    in_ns "${PREFIX}inet" ip link add br0 type bridge
    in_ns "${PREFIX}inet" ip link set br0 up
    for line in "${HOSTS[@]}"; do
        read -r name kind public lan <<<"$line"
        local host="${PREFIX}$name" router="${PREFIX}r$name"
        ip netns add "$host"
        ip netns add "$router"
        in_ns "$host" ip link set lo up
        in_ns "$router" ip link set lo up
        in_ns "$router" sysctl -qw net.ipv4.ip_forward=1
        # the router's WAN port on the internet's bridge
        ip link add "n$name-w" netns "$router" type veth peer name "n$name-b" netns "${PREFIX}inet"
        in_ns "$router" ip link set "n$name-w" name wan0
        in_ns "$router" ip addr add "$public/24" dev wan0
        in_ns "$router" ip link set wan0 up
        in_ns "${PREFIX}inet" ip link set "n$name-b" master br0 up
        # the host's only interface, on the router's LAN
        ip link add "n$name-l" netns "$router" type veth peer name "n$name-h" netns "$host"
        in_ns "$router" ip link set "n$name-l" name lan0
        in_ns "$router" ip addr add "$lan.1/24" dev lan0
        in_ns "$router" ip link set lan0 up
        in_ns "$host" ip link set "n$name-h" name eth0
        in_ns "$host" ip addr add "$lan.2/24" dev eth0
        in_ns "$host" ip link set eth0 up
        in_ns "$host" ip route add default via "$lan.1"
        router_rules "$kind" "$public" "$lan" | in_ns "$router" nft -f -
        if [ "$kind" = napt-upnp ]; then start_miniupnpd "$router" "$lan"; fi
    done
}

case "$action" in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down WORKDIR" >&2; exit 2 ;;
esac
