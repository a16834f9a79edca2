package config

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

const roundTrip = `daemon:
  natt_port: 14500
  cookie_threshold: 7
  half_open_limit: 70
  half_open_per_peer: 3
  retransmit: {timeout: 2s, base: 1.5, tries: 3}
connections:
  gw:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    local_port: 14500
    remote_port: 4501
    proposals: [aes128-sha256-modp3072, aes256gcm16-prfsha384-ecp384]
    prefer: peer
    rekey_time: 2h
    reauth_time: 1d
    encap: yes
    fragmentation: no
    local:
      auth: psk
      id: fqdn:gw-a.example.com
    remote:
      auth: psk
      id: "C=CH, O=Example, CN=gw-b"
    children:
      web:
        local_ts: ["dynamic[tcp/443]", 10.1.0.0/24]
        remote_ts: 10.2.0.1-10.2.0.9
        mode: transport
        esp_proposals: aes128gcm16-modp2048-esn
        rekey_time: 20m
        life_time: 30m
        rekey_bytes: 1G
  rw:
    local_addrs: "%any"
    remote_addrs: "%any"
    local:
      id: vpn.example.com
    remote:
      id: "*.clients.example.com"
    children:
      all:
        local_ts: 0.0.0.0/0
        remote_ts: 10.99.0.0/16
secrets:
  gw:
    ids: [fqdn:gw-a.example.com, "C=CH, O=Example, CN=gw-b"]
    secret: 0x0011223344
  rw:
    ids: [vpn.example.com]
    secret: road-warriors
`

// Load → ike.Connection, field by field, against values worked out here.
func TestIKERoundTrip(t *testing.T) {
	cfg, err := Load(writeConfig(t, "p.yaml", roundTrip))
	if err != nil {
		t.Fatal(err)
	}
	conns, err := cfg.IKEConnections()
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 {
		t.Fatalf("%d connections", len(conns))
	}
	gw := conns[0]
	if gw.Name != "gw" || gw.Local != netip.MustParseAddrPort("192.0.2.1:14500") || gw.Remote != netip.MustParseAddrPort("192.0.2.2:4501") {
		t.Errorf("gw endpoints %s %v %v", gw.Name, gw.Local, gw.Remote)
	}
	wantProps := [][]wire.Transform{
		{encrT(wire.EncrAES_CBC, 128), prfT(wire.PRF_HMAC_SHA2_256), integT(wire.IntegHMAC_SHA2_256_128), keT(wire.KEMODP3072)},
		{encrT(wire.EncrAES_GCM_16, 256), prfT(wire.PRF_HMAC_SHA2_384), keT(wire.KEECP384)},
	}
	if !reflect.DeepEqual(gw.Proposals, wantProps) {
		t.Errorf("gw proposals %v", gw.Proposals)
	}
	if gw.Policy != ike.PreferPeer || !gw.ForceEncap || !gw.NoFragmentation || !gw.SendIDr || gw.RemoteNATTPort != 0 {
		t.Errorf("gw flags policy=%v encap=%v nofrag=%v sendidr=%v", gw.Policy, gw.ForceEncap, gw.NoFragmentation, gw.SendIDr)
	}
	if gw.RekeyTime != 2*time.Hour || gw.ReauthTime != 24*time.Hour {
		t.Errorf("gw lifetimes %v %v", gw.RekeyTime, gw.ReauthTime)
	}
	if gw.Retransmit != (ike.Retransmit{Timeout: 2 * time.Second, Base: 1.5, Tries: 3}) {
		t.Errorf("gw retransmit %+v", gw.Retransmit)
	}
	if !gw.LocalID.Equal(ike.IDFQDN("gw-a.example.com")) {
		t.Errorf("gw local id %v", gw.LocalID)
	}
	if gw.RemoteID.Type != wire.ID_DER_ASN1_DN || gw.RemoteID.String() != "CN=gw-b,O=Example,C=CH" {
		t.Errorf("gw remote id %v", gw.RemoteID)
	}
	for _, a := range []any{gw.LocalAuth, gw.RemoteAuth} {
		p, ok := a.(*ike.PSK)
		if !ok || !bytes.Equal(p.Secret, []byte{0, 0x11, 0x22, 0x33, 0x44}) {
			t.Errorf("gw auth %T", a)
		}
	}
	// Each side has its own copy: zeroing one cannot clear the other.
	if &gw.LocalAuth.(*ike.PSK).Secret[0] == &gw.RemoteAuth.(*ike.PSK).Secret[0] ||
		&gw.LocalAuth.(*ike.PSK).Secret[0] == &cfg.Connections[0].PSK.Value[0] {
		t.Error("PSK octets shared")
	}
	if len(gw.Children) != 1 {
		t.Fatalf("gw children %d", len(gw.Children))
	}
	ch := gw.Children[0]
	wantLocal := []ike.TrafficSelector{
		{Proto: 6, StartPort: 443, EndPort: 443, Start: netip.MustParseAddr("192.0.2.1"), End: netip.MustParseAddr("192.0.2.1")},
		ike.TSFromPrefix(netip.MustParsePrefix("10.1.0.0/24")),
	}
	wantRemote := []ike.TrafficSelector{{EndPort: 0xffff, Start: netip.MustParseAddr("10.2.0.1"), End: netip.MustParseAddr("10.2.0.9")}}
	if ch.Name != "web" || !reflect.DeepEqual(ch.LocalTS, wantLocal) || !reflect.DeepEqual(ch.RemoteTS, wantRemote) {
		t.Errorf("web selectors %v %v", ch.LocalTS, ch.RemoteTS)
	}
	wantESP := [][]wire.Transform{{encrT(wire.EncrAES_GCM_16, 128), keT(wire.KEMODP2048), esnT(wire.ESNOn)}}
	if ch.Mode != ike.ModeTransport || !reflect.DeepEqual(ch.Proposals, wantESP) {
		t.Errorf("web mode %v proposals %v", ch.Mode, ch.Proposals)
	}
	if ch.RekeyTime != 20*time.Minute || ch.LifeTime != 30*time.Minute || ch.LifeBytes != (1<<30)+(1<<30)/10 {
		t.Errorf("web lifetimes %v %v %d", ch.RekeyTime, ch.LifeTime, ch.LifeBytes)
	}

	rw := conns[1]
	if rw.Local.Addr().IsValid() || rw.Remote.Addr().IsValid() || rw.Local.Port() != 500 || rw.Proposals != nil || rw.Policy != ike.PreferLocal {
		t.Errorf("rw endpoints %v %v proposals %v", rw.Local, rw.Remote, rw.Proposals)
	}
	if rw.SendIDr || !rw.RemoteID.Matches(ike.IDFQDN("laptop.clients.example.com")) || rw.RemoteID.Matches(ike.IDFQDN("evil.example.com")) {
		t.Errorf("rw remote id %v sendidr %v", rw.RemoteID, rw.SendIDr)
	}
	if p := rw.LocalAuth.(*ike.PSK); string(p.Secret) != "road-warriors" {
		t.Error("rw PSK")
	}
	if rw.Children[0].Proposals != nil || rw.Children[0].Mode != ike.ModeTunnel {
		t.Errorf("rw child %+v", rw.Children[0])
	}

	// The core accepts what config produces.
	ec, err := cfg.EndpointConfig()
	if err != nil {
		t.Fatal(err)
	}
	if ec.CookieThreshold != 7 || ec.MaxHalfOpen != 70 || ec.HalfOpenPerIP != 3 || ec.NATTPort != 14500 || len(ec.Connections) != 2 {
		t.Errorf("endpoint config %+v", ec)
	}
	if _, err := ike.NewEndpoint(ec, time.Unix(0, 0)); err != nil {
		t.Errorf("ike.NewEndpoint: %v", err)
	}
}

// The PSK authenticator wired from the secrets computes RFC 7296 §2.15's
// AUTH with the configured key.
func TestIKEPSKProves(t *testing.T) {
	cfg, err := Load(writeConfig(t, "p.yaml", roundTrip))
	if err != nil {
		t.Fatal(err)
	}
	conns, err := cfg.IKEConnections()
	if err != nil {
		t.Fatal(err)
	}
	prf, err := suite.LookupPRF(wire.PRF_HMAC_SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	ctx := &ike.AuthContext{PRF: prf, SignedOctets: []byte("signed octets")}
	ps, err := conns[1].LocalAuth.Prove(ctx)
	if err != nil || len(ps) != 1 {
		t.Fatalf("Prove: %v %v", ps, err)
	}
	want := suite.PSKAuth(prf, []byte("road-warriors"), ctx.SignedOctets)
	if a, ok := ps[0].(*wire.Auth); !ok || !bytes.Equal(a.Data, want) {
		t.Errorf("AUTH %v", ps[0])
	}
	if err := conns[1].RemoteAuth.Verify(ctx, ps); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

const perUser = `connections:
  rw:
    local_addrs: 192.0.2.1
    remote_addrs: "%any"
    local: {id: vpn.example.com}
    remote: {id: "*@example.com"}
    children: {lan: {local_ts: 10.1.0.0/24, remote_ts: 10.99.0.0/16}}
secrets:
  alice: {ids: [alice@example.com], secret: alice-key}
  bob: {ids: [bob@example.com], secret: bob-key}
  elsewhere: {ids: [alice@example.org], secret: not-this-one}
  shared: {ids: [vpn.example.com], secret: shared-key}
`

// Road warriors with a PSK each: the secret is picked by the identity the
// peer claims (IDi), not fixed when loading.
func TestIKEPerUserPSK(t *testing.T) {
	cfg, err := Load(writeConfig(t, "p.yaml", perUser))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connections[0]
	if c.PSK == nil || c.PSK.Name != "shared" || len(c.PeerPSKs) != 2 || c.PeerPSKs[0].Name != "alice" || c.PeerPSKs[1].Name != "bob" {
		t.Fatalf("static %v, per peer %v", c.PSK, c.PeerPSKs)
	}
	conns, err := cfg.IKEConnections()
	if err != nil {
		t.Fatal(err)
	}
	rw := conns[0]
	prf, _ := suite.LookupPRF(wire.PRF_HMAC_SHA2_256)
	signed := []byte("initiator's signed octets")
	authBy := func(key string) []wire.Payload {
		return []wire.Payload{&wire.Auth{Method: wire.AuthSharedKeyMIC, Data: suite.PSKAuth(prf, []byte(key), signed)}}
	}
	vpn := ike.IDFQDN("vpn.example.com")
	for _, tc := range []struct {
		peer, key string
		ok        bool
	}{
		{"alice@example.com", "alice-key", true},
		{"bob@example.com", "bob-key", true},
		{"alice@example.com", "bob-key", false}, // bob cannot pass as alice
		{"carol@example.com", "alice-key", false},
		{"carol@example.com", "shared-key", true}, // no key of her own: the shared one
		{"bob@example.com", "shared-key", false},  // bob's own key comes first
	} {
		ctx := &ike.AuthContext{PRF: prf, SignedOctets: signed, ID: ike.IDEmail(tc.peer), Peer: vpn}
		if err := rw.RemoteAuth.Verify(ctx, authBy(tc.key)); (err == nil) != tc.ok {
			t.Errorf("%s with %s: %v", tc.peer, tc.key, err)
		}
	}
	// The responder answers bob with bob's key.
	ctx := &ike.AuthContext{PRF: prf, SignedOctets: []byte("responder's octets"), ID: vpn, Peer: ike.IDEmail("bob@example.com")}
	ps, err := rw.LocalAuth.Prove(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := suite.PSKAuth(prf, []byte("bob-key"), ctx.SignedOctets)
	if a := ps[0].(*wire.Auth); !bytes.Equal(a.Data, want) {
		t.Error("Prove did not use bob's key")
	}
}

// Without a shared secret, per-user secrets alone satisfy a psk connection.
func TestIKEPerUserOnly(t *testing.T) {
	text := strings.Replace(perUser, "  shared: {ids: [vpn.example.com], secret: shared-key}\n", "", 1)
	cfg, err := Load(writeConfig(t, "p.yaml", text))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Connections[0]; c.PSK != nil || len(c.PeerPSKs) != 2 {
		t.Fatalf("static %v, per peer %d", c.PSK, len(c.PeerPSKs))
	}
	conns, err := cfg.IKEConnections()
	if err != nil {
		t.Fatal(err)
	}
	prf, _ := suite.LookupPRF(wire.PRF_HMAC_SHA2_256)
	ctx := &ike.AuthContext{PRF: prf, SignedOctets: []byte("x"), ID: ike.IDFQDN("vpn.example.com")}
	if _, err := conns[0].LocalAuth.Prove(ctx); err == nil || !strings.HasPrefix(err.Error(), "config: no PSK for vpn.example.com") {
		t.Errorf("Prove with no peer known and no shared key: %v", err)
	}
}
