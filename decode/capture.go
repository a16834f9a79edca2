// Package decode reads packet captures (pcap and pcapng, no cgo) and decodes
// the IKEv2 messages in them: UDP port 500, and port 4500 after the non-ESP
// marker (RFC 3948 §2.2); SKF fragments are reassembled (RFC 7383) and, with
// a Wireshark ikev2_decryption_table, SK payloads are decrypted. It backs
// `petrel decode`.
//
// Bad packets are reported in the results, never fatal.
//
// decode imports wire, suite, keylog, gopacket (pcapgo and layers) and the
// standard library.
package decode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Datagram is one UDP datagram found in a capture.
type Datagram struct {
	Frame    int // 1-based, as Wireshark numbers frames
	Time     time.Time
	Src, Dst netip.AddrPort
	Payload  []byte
}

// packetSource is what pcapgo's two readers have in common.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// ReadUDP calls fn for every UDP datagram in a pcap or pcapng capture, in
// order. Frames that are not UDP are skipped; frames that cannot be decoded
// are passed to bad with their frame number. It stops at the first error
// reading the file itself.
func ReadUDP(r io.Reader, fn func(Datagram), bad func(frame int, err error)) error {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("decode: reading capture: %w", err)
	}
	var src packetSource
	var link layers.LinkType
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return fmt.Errorf("decode: pcapng: %w", err)
		}
		src, link = ng, ng.LinkType()
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return fmt.Errorf("decode: pcap: %w", err)
		}
		src, link = pr, pr.LinkType()
	}
	for frame := 1; ; frame++ {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode: frame %d: %w", frame, err)
		}
		d, ok, err := udpOf(data, link)
		if err != nil {
			bad(frame, err)
			continue
		}
		if ok {
			d.Frame, d.Time = frame, ci.Timestamp
			fn(d)
		}
	}
}

// udpOf extracts the UDP datagram of one frame.
func udpOf(data []byte, link layers.LinkType) (Datagram, bool, error) {
	var d Datagram
	pkt := gopacket.NewPacket(data, link, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var srcIP, dstIP netip.Addr
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		srcIP, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dstIP, _ = netip.AddrFromSlice(ip.DstIP.To4())
	case *layers.IPv6:
		srcIP, _ = netip.AddrFromSlice(ip.SrcIP)
		dstIP, _ = netip.AddrFromSlice(ip.DstIP)
	default:
		if el := pkt.ErrorLayer(); el != nil {
			return d, false, fmt.Errorf("decode: %v", el.Error())
		}
		return d, false, nil
	}
	udp, ok := pkt.TransportLayer().(*layers.UDP)
	if !ok {
		if el := pkt.ErrorLayer(); el != nil {
			return d, false, fmt.Errorf("decode: %v", el.Error())
		}
		return d, false, nil
	}
	d.Src = netip.AddrPortFrom(srcIP, uint16(udp.SrcPort))
	d.Dst = netip.AddrPortFrom(dstIP, uint16(udp.DstPort))
	d.Payload = append([]byte(nil), udp.Payload...)
	return d, true, nil
}
