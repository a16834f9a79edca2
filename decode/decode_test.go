package decode

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/keylog"
)

func loadKeys(t *testing.T) []keylog.IKESA {
	t.Helper()
	f, err := os.Open("testdata/ikev2_decryption_table")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys, err := keylog.ParseIKETable(f)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func decodeFile(t *testing.T, path string, keys []keylog.IKESA) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := NewDecoder(keys)
	var recs []Record
	err = ReadUDP(f, func(dg Datagram) {
		if r, ok := d.Decode(dg); ok {
			recs = append(recs, r)
		}
	}, func(frame int, err error) { t.Errorf("frame %d: %v", frame, err) })
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// typeList is the payload sequence the way tshark lists isakmp.typepayload
// (outer payloads, then the decrypted inner ones), without the SA payload's
// Proposal (2) and Transform (3) substructures.
func typeList(r Record) string {
	var s []string
	for _, p := range append(append([]PayloadInfo{}, r.Payloads...), r.Inner...) {
		s = append(s, strconv.Itoa(int(p.TypeNum)))
	}
	return strings.Join(s, ",")
}

var wiresharkCaptures = []struct {
	file  string
	want  []string // payload types per frame, as tshark 4.0.17 lists them (substructures dropped)
	auth3 string   // frame 3's AUTH data, as Wireshark's test suite expects (shared/INTEROP.md)
}{
	{"ikev2-decrypt-aes256cbc.pcapng",
		[]string{"33,34,40,41,41,41", "33,34,40,41,41,41", "46,35,41,36,39,33,44,45,41,41", "46,36,39,33,44,45,41"},
		"e1a8d550064201a7ec024a85758d0673c61c5c510ac13bcd225d6327f50da3d3"},
	{"ikev2-decrypt-aes256ccm16.pcapng",
		[]string{"33,34,40,41,41", "33,34,40,41,41,41", "46,35,41,36,39,33,44,45,41,41", "46,36,39,33,44,45,41"},
		"fa2e74bdc01e30fb0b3ddc9723c9449095969da51f69e560209d2c2b7940210a"},
}

func TestWiresharkCaptures(t *testing.T) {
	keys := loadKeys(t)
	for _, c := range wiresharkCaptures {
		t.Run(c.file, func(t *testing.T) {
			recs := decodeFile(t, "testdata/"+c.file, keys)
			if len(recs) != len(c.want) {
				t.Fatalf("%d IKE messages, want %d", len(recs), len(c.want))
			}
			for i, r := range recs {
				if r.Error != "" {
					t.Errorf("frame %d: %s", r.Frame, r.Error)
				}
				if got := typeList(r); got != c.want[i] {
					t.Errorf("frame %d payloads %s, want %s", r.Frame, got, c.want[i])
				}
				if r.Exchange == "IKE_AUTH" && !r.Decrypted {
					t.Errorf("frame %d: SK payload not decrypted", r.Frame)
				}
			}
			var auth string
			for _, p := range recs[2].Inner {
				if p.Type == "AUTH" {
					auth = p.Fields["data"]
				}
			}
			if auth != c.auth3 {
				t.Errorf("frame 3 AUTH data %s, want %s", auth, c.auth3)
			}
		})
	}
}

// The same captures through tshark itself, when it is installed: petrel's
// payload sequence must equal tshark's.
func TestAgainstTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	keys := loadKeys(t)
	table, _ := os.ReadFile("testdata/ikev2_decryption_table")
	var args []string
	for _, l := range strings.Split(string(table), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			args = append(args, "-o", "uat:ikev2_decryption_table:"+l)
		}
	}
	for _, c := range wiresharkCaptures {
		cmd := exec.Command(tshark, append(append([]string{"-n", "-r", "testdata/" + c.file}, args...),
			"-T", "fields", "-e", "isakmp.typepayload")...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark: %v: %s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		recs := decodeFile(t, "testdata/"+c.file, keys)
		if len(lines) != len(recs) {
			t.Fatalf("%s: tshark saw %d messages, petrel %d", c.file, len(lines), len(recs))
		}
		for i, l := range lines {
			var kept []string
			for _, v := range strings.Split(l, ",") {
				if v != "2" && v != "3" {
					kept = append(kept, v)
				}
			}
			if want, got := strings.Join(kept, ","), typeList(recs[i]); got != want {
				t.Errorf("%s frame %d: petrel %s, tshark %s", c.file, i+1, got, want)
			}
		}
	}
}

// A broken message is reported in its record, never fatal, and the
// remaining frames still decode.
func TestMalformedReported(t *testing.T) {
	recs := decodeFile(t, "testdata/malformed-ikev2.pcap", nil)
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	bad := 0
	for _, r := range recs {
		if r.Error != "" {
			bad++
		}
	}
	if bad == 0 {
		t.Errorf("malformed capture decoded without an error: %+v", recs)
	}
}

// Without keys, SK payloads stay opaque and are not reported as errors.
func TestNoKeysNoError(t *testing.T) {
	recs := decodeFile(t, "testdata/ikev2-decrypt-aes256cbc.pcapng", nil)
	for _, r := range recs {
		if r.Error != "" || r.Decrypted || len(r.Inner) != 0 {
			t.Errorf("frame %d without keys: %+v", r.Frame, r)
		}
	}
}

// A wrong key is an error on that message (ICV check), not a crash.
func TestWrongKeyReported(t *testing.T) {
	keys := loadKeys(t)
	for i := range keys {
		for _, k := range [][]byte{keys[i].SKai, keys[i].SKar, keys[i].SKei, keys[i].SKer} {
			if len(k) > 0 {
				k[0] ^= 1
			}
		}
	}
	recs := decodeFile(t, "testdata/ikev2-decrypt-aes256cbc.pcapng", keys)
	if recs[2].Error == "" || recs[2].Decrypted {
		t.Errorf("frame 3 with a flipped key: %+v", recs[2])
	}
}
