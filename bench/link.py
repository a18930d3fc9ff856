"""Where the two VMMs of a migration run, and the link between them.

`loopback`: both in this network namespace, the destination listening on 127.0.0.1.
`veth1g`: two network namespaces joined by a veth pair, as two hosts joined by a 1 Gbit/s link
would be: the source's end shaped with `tc qdisc ... tbf rate 1gbit` (netem is not in these
kernels; tbf is), one VMM in each namespace. Monitor sockets are UNIX sockets in /tmp, which
namespaces share, so the benchmark drives both VMMs as before."""

import subprocess

SOURCE_NS, DESTINATION_NS = "skvm-bench-src", "skvm-bench-dst"
SOURCE_IP, DESTINATION_IP = "10.77.0.1", "10.77.0.2"


def run(*argv):
    subprocess.run(list(argv), check=True, capture_output=True, text=True)


class Loopback:
    name = "loopback"
    description = "source and destination on loopback (`-incoming tcp:127.0.0.1:PORT`)"
    destination_host = "127.0.0.1"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def source_argv(self, argv):
        return argv

    def destination_argv(self, argv):
        return argv

    def iperf_client_argv(self, argv):
        return argv

    def iperf_server_argv(self, argv):
        return argv


class Veth:
    """Two namespaces and a shaped veth pair; removed again on exit, whatever happened."""

    def __init__(self, rate="1gbit"):
        self.rate = rate
        self.name = f"veth{rate.replace('gbit', 'g').replace('mbit', 'm')}"
        self.description = (f"source and destination in two network namespaces joined by a veth pair, "
                            f"the source's end limited to {rate} (`tc qdisc add dev ... root tbf rate {rate} "
                            f"burst 1mbit latency 20ms`)")
        self.destination_host = DESTINATION_IP

    def __enter__(self):
        self.remove()
        try:
            run("ip", "netns", "add", SOURCE_NS)
            run("ip", "netns", "add", DESTINATION_NS)
            run("ip", "link", "add", "skvm-src", "netns", SOURCE_NS, "type", "veth",
                "peer", "name", "skvm-dst", "netns", DESTINATION_NS)
            for ns, dev, ip in ((SOURCE_NS, "skvm-src", SOURCE_IP), (DESTINATION_NS, "skvm-dst", DESTINATION_IP)):
                run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
                run("ip", "-n", ns, "link", "set", dev, "up")
                run("ip", "-n", ns, "link", "set", "lo", "up")
            # A 1 Mbit bucket: big enough that tbf, not its burst size, limits one TCP stream.
            run("ip", "netns", "exec", SOURCE_NS, "tc", "qdisc", "add", "dev", "skvm-src", "root",
                "tbf", "rate", self.rate, "burst", "1mbit", "latency", "20ms")
        except subprocess.CalledProcessError as error:
            self.remove()
            raise SystemExit(f"could not set up the {self.name} link: {' '.join(error.cmd)}: "
                             f"{error.stderr.strip()} (this needs root, iproute2 and the sch_tbf module)")
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    @staticmethod
    def remove():
        for ns in (SOURCE_NS, DESTINATION_NS):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def source_argv(self, argv):
        return ["ip", "netns", "exec", SOURCE_NS] + argv

    def destination_argv(self, argv):
        return ["ip", "netns", "exec", DESTINATION_NS] + argv

    iperf_client_argv = source_argv
    iperf_server_argv = destination_argv


def named(name):
    if name == "loopback":
        return Loopback()
    if name == "veth1g":
        return Veth("1gbit")
    raise ValueError(f"unknown link {name!r}: use loopback or veth1g")
