package suite

import (
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"slices"
	"strconv"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/petrel-vpn/petrel/wire"
)

// encMode is how an Encr turns keys into a cipher.
type encMode uint8

const (
	modeNull   encMode = iota // ENCR_NULL, ESP only (RFC 2410)
	modeCBC                   // RFC 3602
	modeCTR                   // RFC 3686 / RFC 5930
	modeGCM                   // RFC 4106 / RFC 5282
	modeCCM                   // RFC 4309 / RFC 5282
	modeChaCha                // RFC 7634
)

// Encr describes one encryption transform (Transform Type 1) at one key
// length. Descriptors are shared and immutable.
type Encr struct {
	ID      wire.EncrID
	KeyBits int // value of the Key Length attribute; 0 when the transform takes none
	KeyLen  int // octets of cipher key
	SaltLen int // octets of salt/nonce taken from the key material after the key
	IVLen   int // octets of explicit IV carried in each message
	// BlockLen is the alignment of plaintext+padding+Pad Length
	// (RFC 7296 §3.14): the cipher block size for CBC, 1 for CTR and AEADs.
	BlockLen int
	ICVLen   int // AEAD tag octets; 0 for non-AEAD transforms
	mode     encMode
}

// AEAD reports whether the transform is a combined-mode cipher, which must
// not be proposed together with an INTEG transform (RFC 7296 §3.3).
func (e *Encr) AEAD() bool { return e.ICVLen > 0 }

// KeyMatLen is how many octets of key material the transform consumes: the
// key plus the salt (RFC 5282 §7.1, RFC 5930 §2, RFC 7634 §2, RFC 4309 §7.1).
func (e *Encr) KeyMatLen() int { return e.KeyLen + e.SaltLen }

// Transform is the proposal transform naming this descriptor.
func (e *Encr) Transform() wire.Transform {
	return wire.Transform{Type: wire.TransformENCR, ID: uint16(e.ID), KeyLength: uint16(e.KeyBits)}
}

func (e *Encr) String() string { return e.Transform().String() }

// newAEAD builds the AEAD for a key (salt excluded).
func (e *Encr) newAEAD(key []byte) (cipher.AEAD, error) {
	switch e.mode {
	case modeGCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		if e.ICVLen < 12 {
			return newGCMShortTag(b, e.ICVLen)
		}
		return cipher.NewGCMWithTagSize(b, e.ICVLen)
	case modeCCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return NewCCM(b, e.ICVLen, e.SaltLen+e.IVLen)
	case modeChaCha:
		return chacha20poly1305.New(key)
	}
	return nil, &NotSupportedError{Transform: e.Transform(), Reason: "not an AEAD"}
}

// encrTable holds every implemented (ID, key length) pair.
var encrTable = map[wire.EncrID]map[int]*Encr{}

func regEncr(e *Encr) {
	m := encrTable[e.ID]
	if m == nil {
		m = map[int]*Encr{}
		encrTable[e.ID] = m
	}
	m[e.KeyBits] = e
}

func init() {
	for _, bits := range []int{128, 192, 256} {
		k := bits / 8
		regEncr(&Encr{ID: wire.EncrAES_CBC, KeyBits: bits, KeyLen: k, IVLen: 16, BlockLen: 16, mode: modeCBC})
		regEncr(&Encr{ID: wire.EncrAES_CTR, KeyBits: bits, KeyLen: k, SaltLen: 4, IVLen: 8, BlockLen: 1, mode: modeCTR})
		for id, icv := range map[wire.EncrID]int{wire.EncrAES_GCM_8: 8, wire.EncrAES_GCM_12: 12, wire.EncrAES_GCM_16: 16} {
			regEncr(&Encr{ID: id, KeyBits: bits, KeyLen: k, SaltLen: 4, IVLen: 8, BlockLen: 1, ICVLen: icv, mode: modeGCM})
		}
		for id, icv := range map[wire.EncrID]int{wire.EncrAES_CCM_8: 8, wire.EncrAES_CCM_12: 12, wire.EncrAES_CCM_16: 16} {
			regEncr(&Encr{ID: id, KeyBits: bits, KeyLen: k, SaltLen: 3, IVLen: 8, BlockLen: 1, ICVLen: icv, mode: modeCCM})
		}
	}
	// RFC 7634 §2: the key is always 256 bits and no Key Length attribute is sent.
	regEncr(&Encr{ID: wire.EncrCHACHA20_POLY1305, KeyLen: 32, SaltLen: 4, IVLen: 8, BlockLen: 1, ICVLen: 16, mode: modeChaCha})
	// ENCR_NULL is usable for ESP only (RFC 8221 §5); IKE refuses it.
	regEncr(&Encr{ID: wire.EncrNULL, BlockLen: 1, mode: modeNull})
}

// LookupEncr returns the descriptor for an IKE SA encryption transform. keyBits
// is the Key Length attribute (0 when absent). Transforms RFC 8247 forbids
// give a *ForbiddenError; others not implemented, or a bad key length, give a
// *NotSupportedError.
func LookupEncr(id wire.EncrID, keyBits int) (*Encr, error) {
	t := wire.Transform{Type: wire.TransformENCR, ID: uint16(id), KeyLength: uint16(keyBits)}
	if err := CheckIKE(t); err != nil {
		return nil, err
	}
	return lookupEncr(t)
}

// LookupESPEncr is LookupEncr under the ESP policy of RFC 8221 (which allows
// ENCR_NULL); the descriptor gives Child SA key material lengths (§2.17).
func LookupESPEncr(id wire.EncrID, keyBits int) (*Encr, error) {
	t := wire.Transform{Type: wire.TransformENCR, ID: uint16(id), KeyLength: uint16(keyBits)}
	if err := CheckESP(t); err != nil {
		return nil, err
	}
	return lookupEncr(t)
}

func lookupEncr(t wire.Transform) (*Encr, error) {
	m := encrTable[wire.EncrID(t.ID)]
	if m == nil {
		return nil, &NotSupportedError{Transform: t}
	}
	bits := int(t.KeyLength)
	if e := m[bits]; e != nil {
		return e, nil
	}
	// RFC 7634 §2 says the Key Length attribute MUST NOT be sent; tolerate
	// an explicit 256 from lenient peers.
	if wire.EncrID(t.ID) == wire.EncrCHACHA20_POLY1305 && bits == 256 {
		return m[0], nil
	}
	if bits == 0 {
		// RFC 7296 §3.3.5: the Key Length attribute is mandatory for AES.
		return nil, &NotSupportedError{Transform: t, Reason: "Key Length attribute required (RFC 7296 §3.3.5)"}
	}
	return nil, &NotSupportedError{Transform: t, Reason: "key length " + strconv.Itoa(bits) + " bits"}
}

// Encrs lists every registered IKE encryption descriptor (for tests and
// configuration listings), ordered by ID then key length.
func Encrs() []*Encr {
	var out []*Encr
	for _, m := range encrTable {
		for _, e := range m {
			if e.mode != modeNull {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b *Encr) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.KeyBits, b.KeyBits))
	})
	return out
}
