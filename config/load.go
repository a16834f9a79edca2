package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxIncludeDepth bounds include chains (a file including itself is caught
// earlier, by name).
const maxIncludeDepth = 8

// Load reads the configuration at path and the files its include: entries
// name, validates everything that can be checked statically, reads the
// secrets (inline, from files or from the environment) and picks each
// connection's PSK. The first problem found is returned as an *Error.
func Load(path string) (*Config, error) {
	l := &loader{cfg: &Config{File: path}, seen: map[string]bool{}, conns: map[string]pos{}, secrets: map[string]pos{}}
	l.cfg.Daemon = defaultDaemon()
	if err := l.file(path, 0, true); err != nil {
		return nil, err
	}
	if err := l.cfg.checkLocal(); err != nil {
		return nil, err
	}
	if err := l.cfg.pickSecrets(); err != nil {
		return nil, err
	}
	return l.cfg, nil
}

// checkLocal fills in local ports and checks that each connection's local
// address and port are ones the daemon listens on.
func (c *Config) checkLocal() error {
	d := &c.Daemon
	for _, conn := range c.Connections {
		switch conn.LocalPort {
		case 0:
			conn.LocalPort = d.IKEPort
		case d.IKEPort, d.NATTPort:
		default:
			return conn.portPos.errorf("connections."+conn.Name+".local_port",
				"%d is not a port the daemon listens on; expected daemon.ike_port %d or daemon.natt_port %d", conn.LocalPort, d.IKEPort, d.NATTPort)
		}
		if !conn.LocalAddr.IsValid() {
			continue
		}
		ok := false
		for _, a := range d.Listen {
			ok = ok || a == conn.LocalAddr || a.IsUnspecified() && a.Is4() == conn.LocalAddr.Is4()
		}
		if !ok {
			return conn.addrPos.errorf("connections."+conn.Name+".local_addrs",
				"%s is not among daemon.listen %v; expected one of those or an unspecified address (0.0.0.0, ::) there", conn.LocalAddr, d.Listen)
		}
	}
	return nil
}

type loader struct {
	cfg     *Config
	seen    map[string]bool // absolute paths already read
	conns   map[string]pos  // connection name → where defined
	secrets map[string]pos
}

var topKeys = []string{"include", "daemon", "connections", "secrets"}

// file decodes one file; only the main file may hold daemon settings.
func (l *loader) file(path string, depth int, main bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if l.seen[abs] {
		return &Error{File: path, Msg: "included more than once (an include loop?)"}
	}
	l.seen[abs] = true
	l.cfg.Files = append(l.cfg.Files, path)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d := &decoder{file: path, dir: filepath.Dir(path)}
	root, err := d.parse(data)
	if err != nil {
		return err
	}
	if root == nil {
		if main {
			return &Error{File: path, Msg: "the file is empty; expected a mapping with connections: (and optionally daemon:, secrets:, include:)"}
		}
		return nil
	}
	known := topKeys
	if !main {
		known = []string{"include", "connections", "secrets"}
	}
	root = withoutExtensions(root)
	f, err := d.fields(root, "", known...)
	if err != nil {
		var ce *Error
		if !main && errors.As(err, &ce) && ce.Field == "daemon" {
			ce.Msg = "daemon settings belong in the main file, not in an included one"
		}
		return err
	}
	if e, ok := f["daemon"]; ok {
		if err := d.daemon(e, &l.cfg.Daemon); err != nil {
			return err
		}
	}
	if e, ok := f["secrets"]; ok {
		if err := l.secretsOf(d, e); err != nil {
			return err
		}
	}
	if e, ok := f["connections"]; ok {
		es, err := d.entries(e.val, e.path, "connections")
		if err != nil {
			return err
		}
		for _, ce := range es {
			if first, dup := l.conns[ce.key]; dup {
				return d.errf(ce.kn, ce.path, "connection defined twice; first at %s:%d", first.file, first.line)
			}
			l.conns[ce.key] = d.pos(ce.kn)
			c, err := d.connection(ce)
			if err != nil {
				return err
			}
			l.cfg.Connections = append(l.cfg.Connections, c)
		}
	}
	if e, ok := f["include"]; ok {
		if depth >= maxIncludeDepth {
			return d.errf(e.val, "include", "includes nest deeper than %d files; expected a flatter layout", maxIncludeDepth)
		}
		items, err := d.strList(e)
		if err != nil {
			return err
		}
		for _, it := range items {
			files, err := d.expandInclude(it)
			if err != nil {
				return err
			}
			for _, inc := range files {
				if abs, err := filepath.Abs(inc); err == nil && l.seen[abs] {
					return d.errf(it.node, it.path, "%q was already read (an include loop?); expected each file to be included once", inc)
				}
				if err := l.file(inc, depth+1, false); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (l *loader) secretsOf(d *decoder, e entry) error {
	es, err := d.entries(e.val, e.path, "secrets")
	if err != nil {
		return err
	}
	for _, se := range es {
		if first, dup := l.secrets[se.key]; dup {
			return d.errf(se.kn, se.path, "secret defined twice; first at %s:%d", first.file, first.line)
		}
		l.secrets[se.key] = d.pos(se.kn)
		s, err := d.secret(se)
		if err != nil {
			return err
		}
		l.cfg.Secrets = append(l.cfg.Secrets, s)
	}
	return nil
}

// expandInclude turns one include entry into files: a folder means every
// *.yaml and *.yml file in it; anything else is a glob. Both are relative
// to the including file and sorted by name. A glob may match nothing (an
// empty conf.d is normal); a plain file name must exist.
func (d *decoder) expandInclude(it item) ([]string, error) {
	p := it.val
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		var out []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			out = append(out, m...)
		}
		sort.Strings(out)
		return out, nil
	}
	m, err := filepath.Glob(p)
	if err != nil {
		return nil, d.errf(it.node, it.path, "bad pattern %q; expected a file, a folder or a glob like conf.d/*.yaml", it.val)
	}
	if len(m) == 0 && !strings.ContainsAny(it.val, "*?[") {
		return nil, d.errf(it.node, it.path, "%q does not exist; expected a file, a folder or a glob like conf.d/*.yaml (relative to this file)", it.val)
	}
	sort.Strings(m)
	return m, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse decodes the YAML text to its root mapping node; nil for an empty
// document. Syntax errors keep the line YAML reported.
func (d *decoder) parse(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil, nil
		}
		msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		if l := syntaxLine(data); l > 0 {
			line = l
		}
		return nil, &Error{File: d.file, Line: line, Msg: "YAML syntax: " + msg + "; expected YAML with consistent space indentation"}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, &Error{File: d.file, Line: more.Line, Msg: "a second YAML document (---); expected one document per file"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: d.file, Line: root.Line, Msg: fmt.Sprintf("got %s; expected a mapping with connections: (and optionally daemon:, secrets:, include:)", kindName(root))}
	}
	return root, nil
}

// syntaxLine finds the line that breaks the YAML: the one after the
// longest prefix of lines that still parses. yaml.v3 reports where the
// enclosing block started, which is often far above the mistake.
func syntaxLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 2000 {
		return 0
	}
	for n := len(lines) - 1; n >= 0; n-- {
		var doc yaml.Node
		if yaml.Unmarshal(bytes.Join(lines[:n], nil), &doc) == nil {
			return n + 1
		}
	}
	return 0
}

// withoutExtensions drops top-level keys starting with "x-" (as in Compose
// files): a place to define YAML anchors, such as connection templates,
// that the configuration itself does not read.
func withoutExtensions(root *yaml.Node) *yaml.Node {
	out := *root
	out.Content = nil
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && strings.HasPrefix(k.Value, "x-") {
			continue
		}
		out.Content = append(out.Content, root.Content[i], root.Content[i+1])
	}
	return &out
}
