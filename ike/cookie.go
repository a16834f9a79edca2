package ike

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/netip"
	"time"
)

// cookieJar makes and checks stateless cookies (RFC 7296 §2.6):
//
//	Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//
// with HMAC-SHA-256 keyed by the secret as the hash, truncated to 16
// octets. The secret rotates every interval; a cookie made with the
// previous secret is still accepted for one rotation, so an initiator that
// got a cookie just before a rotation is not turned away.
type cookieJar struct {
	cur, prev [32]byte
	ver       uint8 // version of cur; prev is ver-1
	hasPrev   bool
	rotateAt  time.Time
	interval  time.Duration
}

const cookieLen = 1 + 16

func (j *cookieJar) init(now time.Time, r io.Reader, interval time.Duration) error {
	j.interval = interval
	if _, err := io.ReadFull(r, j.cur[:]); err != nil {
		return err
	}
	j.rotateAt = now.Add(interval)
	return nil
}

// maybeRotate rotates the secret if its time has come. After more than one
// idle interval both secrets are stale: a fresh one replaces them and no
// previous secret is accepted.
func (j *cookieJar) maybeRotate(now time.Time, r io.Reader) {
	if now.Before(j.rotateAt) {
		return
	}
	var next [32]byte
	if _, err := io.ReadFull(r, next[:]); err != nil {
		return // keep the old secret rather than fail open
	}
	stale := now.Sub(j.rotateAt) >= j.interval
	j.prev, j.cur = j.cur, next
	clear(next[:])
	j.ver++
	j.hasPrev = !stale
	if stale {
		clear(j.prev[:])
		j.rotateAt = now.Add(j.interval)
		return
	}
	j.rotateAt = j.rotateAt.Add(j.interval)
}

func cookieMAC(secret *[32]byte, ver uint8, ni []byte, ip netip.Addr, spiI uint64) []byte {
	m := hmac.New(sha256.New, secret[:])
	m.Write(ni)
	m.Write(ip.Unmap().AsSlice())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spiI)
	m.Write(b[:])
	out := make([]byte, 0, cookieLen)
	out = append(out, ver)
	return m.Sum(out)[:cookieLen]
}

func (j *cookieJar) make(ni []byte, ip netip.Addr, spiI uint64) []byte {
	return cookieMAC(&j.cur, j.ver, ni, ip, spiI)
}

// check accepts cookies of the current and the previous secret, compared in
// constant time.
func (j *cookieJar) check(c, ni []byte, ip netip.Addr, spiI uint64) bool {
	if len(c) != cookieLen {
		return false
	}
	switch {
	case c[0] == j.ver:
		return hmac.Equal(c, cookieMAC(&j.cur, j.ver, ni, ip, spiI))
	case j.hasPrev && c[0] == j.ver-1:
		return hmac.Equal(c, cookieMAC(&j.prev, j.ver-1, ni, ip, spiI))
	}
	return false
}
