package node

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/dataplane"
)

// b loses the inbound SA of its pair (as a restarted data plane would);
// a keeps sending on it. b's data plane reports the unknown SPI, b tells
// a with N(INVALID_SPI) over their IKE SA (RFC 7296 §2.4), and a removes
// its stale pair (child-down, reason invalid-spi) while the IKE SA stays.
func TestInvalidSPIRemovesStalePair(t *testing.T) {
	r := newDPDRig(t, "", nil)
	sb, _ := r.b.Sessions()
	sa, _ := r.a.Sessions()
	if len(sb) != 1 || len(sb[0].Children) != 1 || len(sa) != 1 || len(sa[0].Children) != 1 {
		t.Fatalf("sessions a %+v b %+v", sa, sb)
	}
	bIn, err := strconv.ParseUint(sb[0].Children[0].InSPI, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	aOut, _ := strconv.ParseUint(sa[0].Children[0].OutSPI, 16, 32)
	if aOut != bIn {
		t.Fatalf("a sends on %x, b receives on %x", aOut, bIn)
	}
	if err := r.b.DataPlane().DeleteSA(dataplane.In, uint32(bIn)); err != nil {
		t.Fatal(err)
	}
	if r.echo(t, 500*time.Millisecond) {
		t.Fatal("echo passed without b's inbound SA")
	}
	e := waitEvent(t, r.events, "child-down")
	if e.Reason != "invalid-spi" || e.Conn != "b" || e.Child != "net" || e.OutSPI != sb[0].Children[0].InSPI {
		t.Fatalf("child-down %+v", e)
	}
	sa, _ = r.a.Sessions()
	if len(sa) != 1 || sa[0].State != "established" || len(sa[0].Children) != 0 {
		t.Fatalf("a after INVALID_SPI: %+v", sa)
	}
	if _, err := r.a.DataPlane().Counters(dataplane.Out, uint32(aOut)); !errors.Is(err, dataplane.ErrNoSA) {
		t.Fatalf("a's stale outbound SA is still installed: %v", err)
	}
	st := r.b.Stats()
	if st.UnknownSPI == 0 || st.UnknownSPIDrops < st.UnknownSPI {
		t.Fatalf("b stats: %d unknown-SPI reports, %d drops", st.UnknownSPI, st.UnknownSPIDrops)
	}
	// One report per SPI a second: a sent several packets, b reported
	// once or twice in the time the exchange took.
	if st.UnknownSPI > 2 {
		t.Errorf("b reported the SPI %d times", st.UnknownSPI)
	}
}
