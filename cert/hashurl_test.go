package cert

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

func TestHashURL(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	cred := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	const url = "http://certs.example.net/gw.der"
	c := HashURL(wire.CertHashURLX509, cred.Cert.Raw, url)
	h := sha1.Sum(cred.Cert.Raw)
	if string(c.Data[:20]) != string(h[:]) || string(c.Data[20:]) != url {
		t.Fatalf("hash-and-URL data %x", c.Data)
	}
	f := &fakeFetcher{bodies: map[string][]byte{url: cred.Cert.Raw}}
	r := &HashURLResolver{Fetcher: f}
	ctx := context.Background()
	for range 2 {
		certs, err := r.Resolve(ctx, c)
		if err != nil || len(certs) != 1 || !certs[0].Equal(cred.Cert) {
			t.Fatalf("Resolve: %v", err)
		}
	}
	if f.calls[url] != 1 {
		t.Errorf("fetched %d times, want 1 (cached)", f.calls[url])
	}
	// The hash must match what is served.
	other := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	f.bodies["http://certs.example.net/swapped.der"] = other.Cert.Raw
	swapped := HashURL(wire.CertHashURLX509, cred.Cert.Raw, "http://certs.example.net/swapped.der")
	swapped.Data[0] ^= 1 // not in the cache
	if _, err := r.Resolve(ctx, swapped); ReasonOf(err) != ReasonHashURL {
		t.Errorf("hash mismatch: %v", err)
	}
	// Size bound.
	small := &HashURLResolver{Fetcher: f, MaxSize: 100}
	if _, err := small.Resolve(ctx, HashURL(wire.CertHashURLX509, cred.Cert.Raw, url)); ReasonOf(err) != ReasonHashURL {
		t.Errorf("over the size bound: %v", err)
	}
	for _, bad := range []*wire.Cert{
		{Encoding: wire.CertHashURLX509, Data: h[:]},                             // no URL
		HashURL(wire.CertHashURLX509, []byte("uncached"), "ldap://x/y"),          // not http (and not cached)
		HashURL(wire.CertHashURLX509, []byte("nothing"), "http://nowhere/c.der"), // fetch fails
	} {
		if _, err := r.Resolve(ctx, bad); err == nil {
			t.Errorf("Resolve(%x) succeeded", bad.Data)
		}
	}
}

// TestHashURLBundleExchange sends the end-entity certificate as a bundle
// (encoding 13) holding leaf and intermediate, and the single-certificate
// form (12) through Local and Remote.
func TestHashURLBundleExchange(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	cred := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	bundle, err := EncodeBundle([]*x509.Certificate{cred.Cert, p.inter.Cert})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseBundle(bundle)
	if err != nil || len(certs) != 2 || !certs[1].Equal(p.inter.Cert) {
		t.Fatalf("bundle round trip: %v", err)
	}
	f := &fakeFetcher{bodies: map[string][]byte{"http://c/b": bundle, "http://c/gw.der": cred.Cert.Raw}}
	trust := NewStore(nil, []*x509.Certificate{p.root.Cert})
	remote := &Remote{Validator: &Validator{Store: trust, Now: fixedClock(t0)}, HashURL: &HashURLResolver{Fetcher: f}}
	id := ID{wire.ID_FQDN, []byte("gw.example.net")}
	octets := signedOctets(t, id)
	auth, err := SignAuth(nil, cred.Key, wire.AuthDigitalSignature, SchemeECDSASHA256, octets)
	if err != nil {
		t.Fatal(err)
	}
	ps := []wire.Payload{HashURL(wire.CertHashURLBundle, bundle, "http://c/b"), auth}
	if _, err := remote.Verify(context.Background(), VerifyInput{SignedOctets: octets, PeerID: id, Payloads: ps}); err != nil {
		t.Errorf("bundle: %v", err)
	}

	// Local sends hash-and-URL only when the peer announced
	// HTTP_CERT_LOOKUP_SUPPORTED and a URL is configured.
	cred.HashURL = "http://c/gw.der"
	local := &Local{Store: NewStore([]*Credential{cred}, nil)}
	for _, peer := range [][]wire.Payload{nil, {HTTPLookupNotify()}} {
		lookup := PeerHTTPLookup(peer)
		ps, err := local.Prove(cred, ProveInput{SignedOctets: octets, PeerHashes: SupportedHashes, PeerSentHashes: true, PeerHTTPLookup: lookup})
		if err != nil {
			t.Fatal(err)
		}
		want := wire.CertX509Signature
		if lookup != (peer != nil) {
			t.Fatal("PeerHTTPLookup does not see HTTPLookupNotify")
		}
		if lookup {
			want = wire.CertHashURLX509
		}
		if enc := ps[0].(*wire.Cert).Encoding; enc != want {
			t.Errorf("lookup=%v: first CERT %v, want %v", lookup, enc, want)
		}
		if _, err := remote.Verify(context.Background(), VerifyInput{SignedOctets: octets, PeerID: id, Payloads: ps}); err != nil {
			t.Errorf("lookup=%v: %v", lookup, err)
		}
	}
	// A verifier without a resolver refuses hash-and-URL.
	noURL := &Remote{Validator: remote.Validator}
	if _, err := noURL.Verify(context.Background(), VerifyInput{SignedOctets: octets, PeerID: id, Payloads: ps}); ReasonOf(err) != ReasonHashURL {
		t.Errorf("hash-and-URL without a resolver: %v", err)
	}
}
