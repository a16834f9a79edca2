package suite

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// vector is one entry of a testdata/*.json file copied from the shared
// vector set (/work/shared/vectors, see its README); each keeps its
// "source" field naming where the numbers come from.
type vector map[string]any

func loadVectors(t testing.TB, name string) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(f.Vectors) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return f.Vectors
}

func (v vector) str(t testing.TB, k string) string {
	t.Helper()
	switch x := v[k].(type) {
	case string:
		return x
	case float64:
		return strconv.Itoa(int(x))
	}
	t.Fatalf("vector %v: field %q missing", v["id"], k)
	return ""
}

func (v vector) hex(t testing.TB, k string) []byte {
	t.Helper()
	b, err := hex.DecodeString(v.str(t, k))
	if err != nil {
		t.Fatalf("vector %v: %s: %v", v["id"], k, err)
	}
	return b
}

func (v vector) num(t testing.TB, k string) int {
	t.Helper()
	n, err := strconv.Atoi(v.str(t, k))
	if err != nil {
		t.Fatalf("vector %v: %s: %v", v["id"], k, err)
	}
	return n
}

func (v vector) id() string { s, _ := v["id"].(string); return s }

var prfByName = map[string]wire.PRFID{
	"PRF_HMAC_SHA1": wire.PRF_HMAC_SHA1, "PRF_HMAC_SHA2_256": wire.PRF_HMAC_SHA2_256,
	"PRF_HMAC_SHA2_384": wire.PRF_HMAC_SHA2_384, "PRF_HMAC_SHA2_512": wire.PRF_HMAC_SHA2_512,
}

var integByName = map[string]wire.IntegID{
	"AUTH_HMAC_SHA1_96": wire.IntegHMAC_SHA1_96, "AUTH_HMAC_SHA2_256_128": wire.IntegHMAC_SHA2_256_128,
	"AUTH_HMAC_SHA2_384_192": wire.IntegHMAC_SHA2_384_192, "AUTH_HMAC_SHA2_512_256": wire.IntegHMAC_SHA2_512_256,
}

func mustPRF(t testing.TB, name string) *PRF {
	t.Helper()
	id, ok := prfByName[name]
	if !ok {
		t.Fatalf("unknown PRF %q", name)
	}
	p, err := LookupPRF(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustEncr(t testing.TB, id wire.EncrID, bits int) *Encr {
	t.Helper()
	e, err := LookupEncr(id, bits)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustInteg(t testing.TB, id wire.IntegID) *Integ {
	t.Helper()
	g, err := LookupInteg(id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func mustKE(t testing.TB, id wire.KEID) *KEMethod {
	t.Helper()
	m, err := LookupKE(id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
