package esp

import (
	"testing"
)

const benchSize = 1400 // an inner IP packet that fits a 1500-octet path

func BenchmarkSeal(b *testing.B) {
	for i, s := range suites[:4] {
		b.Run(s.name, func(b *testing.B) {
			out, _ := pair(b, i, false, Tunnel)
			buf := make([]byte, out.HeaderLen()+benchSize+out.MaxTrailerLen())
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				out.SetLastSeq(1) // stay far from exhaustion
				if _, err := out.Seal(buf, benchSize, 4); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen opens pre-sealed packets; each is copied back before use
// because Open decrypts in place (the copy is part of the figure).
func BenchmarkOpen(b *testing.B) {
	for i, s := range suites[:4] {
		b.Run(s.name, func(b *testing.B) {
			out, _ := pair(b, i, false, Tunnel)
			const batch = 1024
			pkts := make([][]byte, batch)
			for k := range pkts {
				pkts[k] = seal(b, out, make([]byte, benchSize), 4)
			}
			work := make([]byte, len(pkts[0]))
			c := Config{SPI: out.spi, Encr: s.encr, EncrKey: testKey(s.keyLen, 1), Integ: s.integ, IntegKey: testKey(s.integLen, 9)}
			in, _ := NewInbound(c)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if k == batch {
					k = 0
					in.window = ReplayWindow{}
				}
				copy(work, pkts[k])
				if _, _, _, err := in.Open(work); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}
