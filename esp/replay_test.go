package esp

import (
	"math/rand/v2"
	"testing"
)

// TestWindowZeroValue: a zero ReplayWindow is ready, with the default size.
func TestWindowZeroValue(t *testing.T) {
	var w ReplayWindow
	if w.Size() != DefaultReplayWindow {
		t.Fatal(w.Size())
	}
	if w.Accept(0) != ReplayTooOld {
		t.Fatal("seq 0 accepted")
	}
	if w.Accept(1) != ReplayOK || w.Accept(1) != ReplayDup {
		t.Fatal("seq 1")
	}
}

// TestWindowAgainstModel compares the ring bitmap with a plain set over
// random traffic, for several window sizes including 4096 and the maximum.
func TestWindowAgainstModel(t *testing.T) {
	for _, size := range []int{64, 100, 1024, 4096, MaxReplayWindow} {
		var w ReplayWindow
		w.SetSize(size)
		seen := map[uint64]bool{}
		var top uint64
		r := rand.New(rand.NewPCG(uint64(size), 7))
		for i := 0; i < 200000; i++ {
			var seq uint64
			switch r.IntN(10) {
			case 0: // big jump
				seq = top + uint64(r.IntN(3*size)) + 1
			case 1, 2: // old or duplicate
				seq = top - uint64(r.IntN(size+10))
			default:
				seq = top + uint64(r.IntN(20)) - 10
			}
			if seq == 0 || seq > 1<<62 {
				continue
			}
			var want ReplayResult
			switch {
			case seq <= top && top-seq >= uint64(size):
				want = ReplayTooOld
			case seen[seq]:
				want = ReplayDup
			}
			if got := w.Accept(seq); got != want {
				t.Fatalf("size %d step %d seq %d top %d: got %d want %d", size, i, seq, top, got, want)
			}
			if want == ReplayOK {
				seen[seq] = true
				if seq > top {
					top = seq
				}
			}
		}
	}
}

func TestInferESN(t *testing.T) {
	var w ReplayWindow // W = 1024
	cases := []struct {
		top  uint64
		low  uint32
		want uint64
	}{
		{0, 5, 5},
		{10, 0xfffffff0, 0xfffffff0}, // Th = 0: no subspace below
		{3<<32 | 5000, 4500, 3<<32 | 4500},
		{3<<32 | 5000, 10, 4<<32 | 10}, // left of window: next subspace
		{3<<32 | 100, 0xffffff00, 2<<32 | 0xffffff00},
		{3<<32 | 100, 50, 3<<32 | 50},
		{3<<32 | 100, 200000, 3<<32 | 200000},
	}
	for _, c := range cases {
		w.top = c.top
		if got := w.inferESN(c.low); got != c.want {
			t.Errorf("top %#x low %#x: %#x, want %#x", c.top, c.low, got, c.want)
		}
	}
}
