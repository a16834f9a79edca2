package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-vpn/petrel/decode"
	"github.com/petrel-vpn/petrel/keylog"
)

func init() { subcommands = append(subcommands, newDecodeCmd) }

func newDecodeCmd() *cobra.Command {
	var keysFile, output string
	cmd := &cobra.Command{
		Use:   "decode [--keys TABLE] CAPTURE",
		Short: "Decode (and with keys decrypt) the IKEv2 messages in a pcap or pcapng capture",
		Long: `decode reads a pcap or pcapng capture, finds IKE on UDP 500 and 4500 (after the
non-ESP marker), reassembles SKF fragments, and prints each message's exchange,
flags, message ID, SPIs and payloads. With --keys (a Wireshark
ikev2_decryption_table, as petrel's key log writes), SK payloads are decrypted
and their inner payloads printed. Bad packets are reported, never fatal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: want text or json", output)
			}
			var keys []keylog.IKESA
			if keysFile != "" {
				f, err := os.Open(keysFile)
				if err != nil {
					return err
				}
				keys, err = keylog.ParseIKETable(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", keysFile, err)
				}
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			return runDecode(cmd.OutOrStdout(), f, keys, output == "json")
		},
	}
	cmd.Flags().StringVarP(&keysFile, "keys", "k", "", "Wireshark ikev2_decryption_table to decrypt SK payloads with")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runDecode(w io.Writer, capture io.Reader, keys []keylog.IKESA, asJSON bool) error {
	d := decode.NewDecoder(keys)
	enc := json.NewEncoder(w)
	var werr error
	emit := func(r decode.Record) {
		if werr != nil {
			return
		}
		if asJSON {
			werr = enc.Encode(r)
			return
		}
		_, werr = io.WriteString(w, formatRecord(r))
	}
	err := decode.ReadUDP(capture, func(dg decode.Datagram) {
		if r, ok := d.Decode(dg); ok {
			emit(r)
		}
	}, func(frame int, err error) {
		emit(decode.Record{Frame: frame, Error: err.Error()})
	})
	if err != nil {
		return err
	}
	return werr
}

func formatRecord(r decode.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %v -> %v %s", r.Frame, r.Src, r.Dst, r.Kind)
	switch r.Kind {
	case decode.KindIKE:
		if r.Exchange != "" {
			dir := "request"
			if r.Response {
				dir = "response"
			}
			fmt.Fprintf(&b, " %s %s [%s] mid=%d spi=%s_%s len=%d", r.Exchange, dir, r.Flags, r.MessageID, r.SPIi, r.SPIr, r.Length)
		}
	case decode.KindESP:
		fmt.Fprintf(&b, " spi=%08x seq=%d", r.SPI, r.Seq)
	}
	b.WriteString("\n")
	writePayloads(&b, r.Payloads, "    ")
	if r.Decrypted && r.Fragment != nil && !r.Fragment.Reassembled {
		fmt.Fprintf(&b, "      (fragment %d/%d decrypted, waiting for the rest)\n", r.Fragment.Number, r.Fragment.Total)
	}
	if len(r.Inner) > 0 {
		writePayloads(&b, r.Inner, "      ")
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "    ! %s\n", r.Error)
	}
	return b.String()
}

func writePayloads(b *strings.Builder, ps []decode.PayloadInfo, indent string) {
	for _, p := range ps {
		fmt.Fprintf(b, "%s%s\n", indent, p.Summary)
	}
}
