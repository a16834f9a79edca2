// Package keylog writes and reads key logs in the formats of Wireshark's
// IKEv2 decryption table (ikev2_decryption_table) and ESP SA table (esp_sa),
// so that captures of petrel's traffic can be decrypted in Wireshark or tshark.
//
// Key logs hold live session keys: they are opt-in, written with file mode
// 0600, and never enabled by default.
//
// keylog imports wire (for transform IDs) and the standard library only.
package keylog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/petrel-vpn/petrel/wire"
)

// IKESA is what one line of Wireshark's ikev2_decryption_table holds: the
// SPIs and the SK_e/SK_a keys of both directions (RFC 7296 §2.14). For AEAD
// and counter modes the encryption keys include the salt (RFC 5282 §7.1).
type IKESA struct {
	SPIi, SPIr  uint64
	Encr        wire.EncrID
	EncrKeyBits int // key size without salt, e.g. 256 for AES-GCM-256
	Integ       wire.IntegID
	SKei, SKer  []byte
	SKai, SKar  []byte // empty for AEAD
	// NoIntegCheck marks a table line whose integrity algorithm is one of
	// Wireshark's "ANY n-bits of Authentication [No Checking]" entries:
	// ICVLen octets are skipped without checking.
	NoIntegCheck bool
	ICVLen       int
}

// ESPSA is what one line of Wireshark's esp_sa table holds. Src and Dst may be
// the zero Addr, written as "*". EncrKey includes the salt for AEAD and CTR
// (RFC 4106 §8.1, RFC 3686 §5.1, RFC 7634 §2).
type ESPSA struct {
	IPv6        bool
	Src, Dst    netip.Addr
	SPI         uint32
	Encr        wire.EncrID
	EncrKeyBits int
	Integ       wire.IntegID
	EncrKey     []byte
	IntegKey    []byte
}

// ErrUnsupported is returned for algorithms Wireshark's tables cannot name
// (tshark 4.0 has no ChaCha20-Poly1305 for IKE or ESP): no line is written,
// since tshark refuses a whole table with an unknown name.
var ErrUnsupported = errors.New("keylog: algorithm has no Wireshark table name")

// Writer appends lines to the two tables in a folder laid out like a
// Wireshark configuration folder (usable as WIRESHARK_CONFIG_DIR). It is safe
// for concurrent use.
type Writer struct {
	mu       sync.Mutex
	ike, esp io.WriteCloser
}

// Table file names inside a key log folder, as Wireshark names its UATs.
const (
	IKEFile = "ikev2_decryption_table"
	ESPFile = "esp_sa"
)

// Open creates dir if needed and opens both tables for appending, mode 0600.
func Open(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keylog: %w", err)
	}
	open := func(name string) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("keylog: %w", err)
		}
		return f, nil
	}
	ike, err := open(IKEFile)
	if err != nil {
		return nil, err
	}
	esp, err := open(ESPFile)
	if err != nil {
		ike.Close()
		return nil, err
	}
	return NewWriter(ike, esp), nil
}

// NewWriter writes IKE lines to ike and ESP lines to esp; either may be nil.
func NewWriter(ike, esp io.WriteCloser) *Writer { return &Writer{ike: ike, esp: esp} }

// LogIKE appends one ikev2_decryption_table line.
func (w *Writer) LogIKE(sa IKESA) error {
	line, err := IKELine(sa)
	if err != nil {
		return err
	}
	return w.write(w.ike, line)
}

// LogESP appends one esp_sa line.
func (w *Writer) LogESP(sa ESPSA) error {
	line, err := ESPLine(sa)
	if err != nil {
		return err
	}
	return w.write(w.esp, line)
}

func (w *Writer) write(f io.Writer, line string) error {
	if w == nil || f == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := io.WriteString(f, line+"\n"); err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	return nil
}

// Close closes both tables.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, f := range []io.WriteCloser{w.ike, w.esp} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// IKELine formats sa as an ikev2_decryption_table line:
//
//	SPIi,SPIr,SK_ei,SK_er,"<encr>",SK_ai,SK_ar,"<integ>"
func IKELine(sa IKESA) (string, error) {
	encr, ok := ikeEncrName(sa.Encr, sa.EncrKeyBits)
	if !ok {
		return "", fmt.Errorf("%w: IKE %v-%d", ErrUnsupported, sa.Encr, sa.EncrKeyBits)
	}
	integ, ok := ikeIntegNames[sa.Integ]
	if !ok {
		return "", fmt.Errorf("%w: IKE %v", ErrUnsupported, sa.Integ)
	}
	return fmt.Sprintf("%016x,%016x,%x,%x,%q,%x,%x,%q",
		sa.SPIi, sa.SPIr, sa.SKei, sa.SKer, encr, sa.SKai, sa.SKar, integ), nil
}

// ESPLine formats sa as an esp_sa line:
//
//	"IPv4","src","dst","0xSPI","<encr>","0xKEY","<auth>","0xKEY"
func ESPLine(sa ESPSA) (string, error) {
	encr, ok := espEncrName(sa.Encr)
	if !ok {
		return "", fmt.Errorf("%w: ESP %v", ErrUnsupported, sa.Encr)
	}
	auth, ok := espIntegNames[sa.Integ]
	if !ok {
		return "", fmt.Errorf("%w: ESP %v", ErrUnsupported, sa.Integ)
	}
	proto := "IPv4"
	if sa.IPv6 {
		proto = "IPv6"
	}
	addr := func(a netip.Addr) string {
		if !a.IsValid() {
			return "*"
		}
		return a.String()
	}
	authKey := ""
	if len(sa.IntegKey) > 0 {
		authKey = "0x" + hex.EncodeToString(sa.IntegKey)
	}
	return fmt.Sprintf("%q,%q,%q,\"0x%08x\",%q,\"0x%x\",%q,%q",
		proto, addr(sa.Src), addr(sa.Dst), sa.SPI, encr, sa.EncrKey, auth, authKey), nil
}

// ParseIKETable reads an ikev2_decryption_table: blank lines and '#'
// comments are skipped; a line with an algorithm name petrel does not know is
// an error naming the line.
func ParseIKETable(r io.Reader) ([]IKESA, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("keylog: %w", err)
	}
	var out []IKESA
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sa, err := parseIKELine(line)
		if err != nil {
			return nil, fmt.Errorf("keylog: line %d: %w", n+1, err)
		}
		out = append(out, sa)
	}
	return out, nil
}
