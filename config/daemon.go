package config

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

func defaultDaemon() Daemon {
	return Daemon{
		Listen:          append([]netip.Addr(nil), DefaultListen...),
		IKEPort:         DefaultIKEPort,
		NATTPort:        DefaultNATTPort,
		ControlSocket:   DefaultControlSocket,
		Log:             Log{Format: DefaultLogFormat, Level: DefaultLogLevel, Levels: map[string]string{}},
		CookieThreshold: DefaultCookieThreshold,
		HalfOpenLimit:   DefaultHalfOpenLimit,
		HalfOpenPerPeer: DefaultHalfOpenPerPeer,
		Dataplane:       DefaultDataplane,
		Retransmit: Retransmit{
			Timeout: DefaultRetransmitTimeout, Base: DefaultRetransmitBase, Tries: DefaultRetransmitTries,
		},
	}
}

var logLevels = []string{"debug", "info", "warn", "error"}

// daemon decodes the daemon: section over the defaults in out.
func (d *decoder) daemon(e entry, out *Daemon) error {
	f, err := d.fields(e.val, e.path, "listen", "ike_port", "natt_port", "control_socket", "metrics_listen",
		"log", "cookie_threshold", "half_open_limit", "half_open_per_peer", "dataplane", "keylog_dir", "retransmit")
	if err != nil {
		return err
	}
	if e, ok := f["listen"]; ok {
		items, err := d.strList(e)
		if err != nil {
			return err
		}
		out.Listen = out.Listen[:0]
		for _, it := range items {
			a, err := netip.ParseAddr(it.val)
			if err != nil {
				return d.errf(it.node, it.path, "%q is not an IP address; expected e.g. 0.0.0.0, :: or 192.0.2.1", it.val)
			}
			out.Listen = append(out.Listen, a)
		}
		if len(out.Listen) == 0 {
			return d.errf(e.val, e.path, "empty list; expected at least one address, e.g. [0.0.0.0, \"::\"]")
		}
	}
	for _, kp := range []struct {
		key string
		p   *uint16
	}{{"ike_port", &out.IKEPort}, {"natt_port", &out.NATTPort}} {
		key, p := kp.key, kp.p
		if e, ok := f[key]; ok {
			if *p, err = d.port(e); err != nil {
				return err
			}
		}
	}
	if out.IKEPort == out.NATTPort {
		e := f["natt_port"]
		if e.val == nil {
			e = f["ike_port"]
		}
		return d.errf(e.val, e.path, "ike_port and natt_port are both %d; expected two different ports", out.IKEPort)
	}
	if e, ok := f["control_socket"]; ok {
		if out.ControlSocket, err = d.str(e); err != nil {
			return err
		}
		if !filepath.IsAbs(out.ControlSocket) {
			return d.errf(e.val, e.path, "%q is relative; expected an absolute path like %s", out.ControlSocket, DefaultControlSocket)
		}
	}
	if e, ok := f["metrics_listen"]; ok {
		if out.MetricsListen, err = d.str(e); err != nil {
			return err
		}
		if err := checkHostPort(out.MetricsListen); err != nil {
			return d.errf(e.val, e.path, "%q: %v; expected host:port like 127.0.0.1:9101 or [::1]:9101", out.MetricsListen, err)
		}
	}
	if e, ok := f["log"]; ok {
		if err := d.log(e, &out.Log); err != nil {
			return err
		}
	}
	for _, kp := range []struct {
		key string
		p   *int
	}{{"cookie_threshold", &out.CookieThreshold}, {"half_open_limit", &out.HalfOpenLimit},
		{"half_open_per_peer", &out.HalfOpenPerPeer}} {
		key, p := kp.key, kp.p
		if e, ok := f[key]; ok {
			v, err := d.integer(e, 0, 1_000_000)
			if err != nil {
				return err
			}
			*p = int(v)
		}
	}
	if e, ok := f["dataplane"]; ok {
		if out.Dataplane, err = d.oneOf(e, "auto", "userspace-tun", "netstack", "xfrm"); err != nil {
			return err
		}
	}
	if e, ok := f["keylog_dir"]; ok {
		if out.KeylogDir, err = d.str(e); err != nil {
			return err
		}
		if !filepath.IsAbs(out.KeylogDir) {
			out.KeylogDir = filepath.Join(d.dir, out.KeylogDir)
		}
	}
	if e, ok := f["retransmit"]; ok {
		if err := d.retransmit(e, &out.Retransmit); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) log(e entry, out *Log) error {
	f, err := d.fields(e.val, e.path, "format", "level", "levels")
	if err != nil {
		return err
	}
	if e, ok := f["format"]; ok {
		if out.Format, err = d.oneOf(e, "text", "json"); err != nil {
			return err
		}
	}
	if e, ok := f["level"]; ok {
		if out.Level, err = d.oneOf(e, logLevels...); err != nil {
			return err
		}
	}
	if e, ok := f["levels"]; ok {
		f, err := d.fields(e.val, e.path, LogSubsystems...)
		if err != nil {
			return err
		}
		for _, name := range LogSubsystems {
			le, ok := f[name]
			if !ok {
				continue
			}
			if out.Levels[name], err = d.oneOf(le, logLevels...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) retransmit(e entry, out *Retransmit) error {
	f, err := d.fields(e.val, e.path, "timeout", "base", "tries")
	if err != nil {
		return err
	}
	if e, ok := f["timeout"]; ok {
		if out.Timeout, err = d.duration(e); err != nil {
			return err
		}
		if out.Timeout == 0 {
			return d.errf(e.val, e.path, "0 would retransmit at once; expected a duration like 4s")
		}
	}
	if e, ok := f["base"]; ok {
		if out.Base, err = d.float(e, 1, 10); err != nil {
			return err
		}
	}
	if e, ok := f["tries"]; ok {
		v, err := d.integer(e, 1, 20)
		if err != nil {
			return err
		}
		out.Tries = int(v)
	}
	return nil
}

// checkHostPort accepts host:port with an IP address or an empty host and
// a port from 1 to 65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port")
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return errors.New("host is not an IP address")
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.HasPrefix(port, "+") {
		return errors.New("bad port")
	}
	return nil
}
