package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/petrel-vpn/petrel/wire"
)

// Mode is the IPsec mode of an SA (RFC 4301 §4.1). ESP itself only uses it
// to check the Next Header field of inbound packets.
type Mode uint8

const (
	// Tunnel mode: the payload is a whole IP packet (Next Header 4 or 41).
	Tunnel Mode = iota
	// Transport mode: the payload is the upper-layer protocol data.
	Transport
)

func (m Mode) String() string {
	if m == Transport {
		return "transport"
	}
	return "tunnel"
}

// Replay window sizes in packets (RFC 4303 §3.4.3). The window is kept as a
// ring of 64-bit blocks (RFC 6479), so any size up to MaxReplayWindow costs
// the same per packet.
const (
	DefaultReplayWindow = 1024
	MaxReplayWindow     = (ringBlocks - 1) * 64
)

// Config describes one direction of a Child SA, as negotiated by IKE.
type Config struct {
	SPI uint32
	// Encr is the ENCR transform. EncrKey is the key as taken from KEYMAT
	// (RFC 7296 §2.17): for AEAD transforms the key followed by the 4-octet
	// salt (RFC 4106 §8.1, RFC 7634 §4).
	Encr    wire.EncrID
	EncrKey []byte
	// Integ is the INTEG transform; IntegNONE for AEAD transforms.
	Integ    wire.IntegID
	IntegKey []byte
	// ESN selects 64-bit extended sequence numbers (RFC 4303 §2.2.1).
	ESN  bool
	Mode Mode
	// ReplayWindow is the inbound anti-replay window in packets;
	// 0 means DefaultReplayWindow. Ignored for outbound SAs.
	ReplayWindow int
}

// Keys is what a key log (Wireshark's esp_sa table) needs to decrypt an SA:
// the SPI, the transforms and the keys exactly as configured (AEAD keys
// include the salt). The slices are copies; callers should zero them.
type Keys struct {
	SPI      uint32
	Encr     wire.EncrID
	EncrKey  []byte
	Integ    wire.IntegID
	IntegKey []byte
}

// transform is the crypto shared by both directions of ESP processing.
type transform struct {
	spi     uint32
	esn     bool
	mode    Mode
	encr    wire.EncrID
	integ   wire.IntegID
	encrKey []byte // copies, zeroed by Close
	integKy []byte

	aead  cipher.AEAD // AES-GCM or ChaCha20-Poly1305
	salt  [4]byte
	block cipher.Block // AES-CBC
	ivGen cipher.Block // CBC IV generator, see sealSeq

	ivLen  int
	align  int // ciphertext alignment: cipher block or 4 (RFC 4303 §2.4)
	icvLen int
	newMAC func() hash.Hash

	scratch sync.Pool // *opState
}

// opState is per-operation scratch, pooled so that no packet allocates.
type opState struct {
	nonce [12]byte
	aad   [12]byte
	sum   [64]byte
	mac   hash.Hash
	cbcE  cipher.BlockMode
	cbcD  cipher.BlockMode
}

type ivSetter interface{ SetIV([]byte) }

// integAlg gives the hash, key length and truncated ICV length of an
// HMAC transform (RFC 4868 §2.1, RFC 2404 §2).
func integAlg(id wire.IntegID) (func() hash.Hash, int, int, bool) {
	switch id {
	case wire.IntegHMAC_SHA2_256_128:
		return sha256.New, 32, 16, true
	case wire.IntegHMAC_SHA2_384_192:
		return sha512.New384, 48, 24, true
	case wire.IntegHMAC_SHA2_512_256:
		return sha512.New, 64, 32, true
	case wire.IntegHMAC_SHA1_96:
		return sha1.New, 20, 12, true
	}
	return nil, 0, 0, false
}

func newTransform(c *Config) (*transform, error) {
	t := &transform{spi: c.SPI, esn: c.ESN, mode: c.Mode, encr: c.Encr, integ: c.Integ}
	// SPIs 0..255 are reserved (RFC 4303 §2.1), but known-answer vectors
	// use them; allocating valid SPIs is the data plane's job.
	t.encrKey = append([]byte(nil), c.EncrKey...)
	t.integKy = append([]byte(nil), c.IntegKey...)
	key := t.encrKey
	var err error
	switch c.Encr {
	case wire.EncrAES_GCM_16:
		if n := len(key) - 4; n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("esp: AES-GCM key material must be 20, 28 or 36 octets, got %d", len(key))
		}
		var b cipher.Block
		if b, err = aes.NewCipher(key[:len(key)-4]); err == nil {
			t.aead, err = cipher.NewGCM(b) // 16-octet ICV, RFC 4106 §6
		}
	case wire.EncrCHACHA20_POLY1305:
		if len(key) != chacha20poly1305.KeySize+4 {
			return nil, fmt.Errorf("esp: ChaCha20-Poly1305 key material must be 36 octets, got %d", len(key))
		}
		t.aead, err = chacha20poly1305.New(key[:32])
	case wire.EncrAES_CBC:
		if n := len(key); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("esp: AES-CBC key must be 16, 24 or 32 octets, got %d", n)
		}
		if t.block, err = aes.NewCipher(key); err != nil {
			break
		}
		var ivKey [16]byte
		if _, err = rand.Read(ivKey[:]); err == nil {
			t.ivGen, err = aes.NewCipher(ivKey[:])
		}
		clear(ivKey[:])
	default:
		return nil, fmt.Errorf("esp: unsupported encryption transform %v", c.Encr)
	}
	if err != nil {
		return nil, fmt.Errorf("esp: %v: %w", c.Encr, err)
	}
	if t.aead != nil {
		if c.Integ != wire.IntegNONE {
			return nil, fmt.Errorf("esp: AEAD %v takes no integrity transform, got %v", c.Encr, c.Integ)
		}
		copy(t.salt[:], key[len(key)-4:])
		t.ivLen, t.align, t.icvLen = 8, 4, t.aead.Overhead() // RFC 4106 §3.1, RFC 7634 §2
	} else {
		t.ivLen, t.align = aes.BlockSize, aes.BlockSize // RFC 3602 §2.3
		if c.Integ != wire.IntegNONE {
			h, klen, icv, ok := integAlg(c.Integ)
			if !ok {
				return nil, fmt.Errorf("esp: unsupported integrity transform %v", c.Integ)
			}
			if len(c.IntegKey) != klen {
				return nil, fmt.Errorf("esp: %v key must be %d octets, got %d", c.Integ, klen, len(c.IntegKey))
			}
			t.newMAC, t.icvLen = h, icv
		}
		// Integ NONE with CBC is RFC 4303's confidentiality-only service;
		// it exists for the RFC 3602 known answers. The data plane refuses it.
	}
	t.scratch.New = t.newOpState
	return t, nil
}

func (t *transform) newOpState() any {
	s := new(opState)
	if t.newMAC != nil {
		s.mac = hmac.New(t.newMAC, t.integKy)
	}
	if t.block != nil {
		var zero [aes.BlockSize]byte
		s.cbcE = cipher.NewCBCEncrypter(t.block, zero[:])
		s.cbcD = cipher.NewCBCDecrypter(t.block, zero[:])
	}
	return s
}

// HeaderLen is the room Seal needs before the payload: SPI, sequence
// number and IV (RFC 4303 §2).
func (t *transform) HeaderLen() int { return 8 + t.ivLen }

// MaxTrailerLen is the most Seal appends after the payload: padding, the
// Pad Length and Next Header octets, and the ICV.
func (t *transform) MaxTrailerLen() int { return t.align - 1 + 2 + t.icvLen }

// SealedLen is the ESP packet length for a payload of n octets.
func (t *transform) SealedLen(n int) int {
	return t.HeaderLen() + n + t.padLen(n) + 2 + t.icvLen
}

// padLen is the minimal padding that aligns payload, Pad Length and Next
// Header to the cipher's block (RFC 4303 §2.4).
func (t *transform) padLen(n int) int {
	return (t.align - (n+2)%t.align) % t.align
}

// SPI returns the SA's SPI.
func (t *transform) SPI() uint32 { return t.spi }

// Keys returns copies of the SA's keys for a key log.
func (t *transform) Keys() Keys {
	return Keys{SPI: t.spi, Encr: t.encr, Integ: t.integ,
		EncrKey: append([]byte(nil), t.encrKey...), IntegKey: append([]byte(nil), t.integKy...)}
}

// zero wipes the key copies this package holds. The expanded key schedules
// inside crypto/aes and x/crypto cannot be reached; dropping the SA drops them.
func (t *transform) zero() {
	clear(t.encrKey)
	clear(t.integKy)
	clear(t.salt[:])
}
