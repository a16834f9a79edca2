package wire

import "strings"

// ExchangeType is the IANA "IKEv2 Exchange Types" registry (RFC 7296 §3.1).
type ExchangeType uint8

const (
	IKE_SA_INIT        ExchangeType = 34 // RFC 7296
	IKE_AUTH           ExchangeType = 35 // RFC 7296
	CREATE_CHILD_SA    ExchangeType = 36 // RFC 7296
	INFORMATIONAL      ExchangeType = 37 // RFC 7296
	IKE_SESSION_RESUME ExchangeType = 38 // RFC 5723
	GSA_AUTH           ExchangeType = 39 // G-IKEv2
	GSA_REGISTRATION   ExchangeType = 40 // G-IKEv2
	GSA_REKEY          ExchangeType = 41 // G-IKEv2
	GSA_INBAND_REKEY   ExchangeType = 42 // G-IKEv2
	IKE_INTERMEDIATE   ExchangeType = 43 // RFC 9242
	IKE_FOLLOWUP_KE    ExchangeType = 44 // RFC 9370
)

var exchangeNames = map[ExchangeType]string{
	IKE_SA_INIT: "IKE_SA_INIT", IKE_AUTH: "IKE_AUTH", CREATE_CHILD_SA: "CREATE_CHILD_SA",
	INFORMATIONAL: "INFORMATIONAL", IKE_SESSION_RESUME: "IKE_SESSION_RESUME", GSA_AUTH: "GSA_AUTH",
	GSA_REGISTRATION: "GSA_REGISTRATION", GSA_REKEY: "GSA_REKEY", GSA_INBAND_REKEY: "GSA_INBAND_REKEY",
	IKE_INTERMEDIATE: "IKE_INTERMEDIATE", IKE_FOLLOWUP_KE: "IKE_FOLLOWUP_KE",
}

func (e ExchangeType) String() string { return regName(exchangeNames, e, "EXCHANGE") }

// Flags is the IKE header Flags octet (RFC 7296 §3.1). Bits other than I, V
// and R are reserved: sent as zero, ignored (but preserved) on receipt.
type Flags uint8

const (
	FlagInitiator Flags = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   Flags = 0x10 // V: sender can speak a higher major version
	FlagResponse  Flags = 0x20 // R: this message is a response
)

// Initiator reports whether the I bit is set.
func (f Flags) Initiator() bool { return f&FlagInitiator != 0 }

// Response reports whether the R bit is set.
func (f Flags) Response() bool { return f&FlagResponse != 0 }

// String lists the set bits, e.g. "I|R", "NONE" for none; reserved bits
// print as hex: "I|0x01".
func (f Flags) String() string {
	var parts []string
	if f&FlagInitiator != 0 {
		parts = append(parts, "I")
	}
	if f&FlagVersion != 0 {
		parts = append(parts, "V")
	}
	if f&FlagResponse != 0 {
		parts = append(parts, "R")
	}
	if rest := f &^ (FlagInitiator | FlagVersion | FlagResponse); rest != 0 {
		const hex = "0123456789abcdef"
		parts = append(parts, "0x"+string([]byte{hex[rest>>4], hex[rest&0xf]}))
	}
	if len(parts) == 0 {
		return "NONE"
	}
	return strings.Join(parts, "|")
}
