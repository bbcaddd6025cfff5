"""Real Linux hosts on one machine: systemd-nspawn containers on a bridge, driven over SSH."""
