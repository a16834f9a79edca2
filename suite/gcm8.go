package suite

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

// gcmShortTag is AES-GCM with a tag shorter than crypto/cipher allows (it
// accepts 12..16 octets): ENCR_AES_GCM_8 (RFC 4106 §8, RFC 5282 §3). The
// tag is the full GCM tag's leading octets (NIST SP 800-38D §5.2.1.2).
// Open decrypts in CTR mode and recomputes the tag by sealing again, so it
// costs two passes; GCM-8 is not in the default proposals.
type gcmShortTag struct {
	b      cipher.Block
	full   cipher.AEAD
	tagLen int
}

func newGCMShortTag(b cipher.Block, tagLen int) (cipher.AEAD, error) {
	full, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &gcmShortTag{b: b, full: full, tagLen: tagLen}, nil
}

func (g *gcmShortTag) NonceSize() int { return 12 }
func (g *gcmShortTag) Overhead() int  { return g.tagLen }

func (g *gcmShortTag) Seal(dst, nonce, plaintext, aad []byte) []byte {
	// Seal into a scratch buffer: the full tag would overrun a dst sized
	// for the short one.
	sealed := g.full.Seal(nil, nonce, plaintext, aad)
	ret, out := sliceForAppend(dst, len(plaintext)+g.tagLen)
	copy(out, sealed)
	return ret
}

var errGCMOpen = errors.New("suite: GCM message authentication failed")

// maxGCMLen keeps the 32-bit GCM counter from wrapping (SP 800-38D §5.2.1.1).
const maxGCMLen = (1<<32 - 2) * 16

func (g *gcmShortTag) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != 12 || len(ciphertext) < g.tagLen || len(ciphertext)-g.tagLen > maxGCMLen {
		return nil, errGCMOpen
	}
	ct, tag := ciphertext[:len(ciphertext)-g.tagLen], ciphertext[len(ciphertext)-g.tagLen:]
	// Keystream for the data starts at J0+1 = nonce | 00000002.
	var ctr [16]byte
	copy(ctr[:], nonce)
	ctr[15] = 2
	pt := make([]byte, len(ct))
	cipher.NewCTR(g.b, ctr[:]).XORKeyStream(pt, ct)
	check := g.full.Seal(nil, nonce, pt, aad)
	if subtle.ConstantTimeCompare(check[len(ct):len(ct)+g.tagLen], tag) != 1 {
		clear(pt)
		return nil, errGCMOpen
	}
	ret, out := sliceForAppend(dst, len(pt))
	copy(out, pt)
	clear(pt)
	return ret, nil
}
