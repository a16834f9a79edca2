package wire

// PayloadType is the IANA "IKEv2 Payload Types" registry (RFC 7296 §3.2).
type PayloadType uint8

const (
	PayloadNone    PayloadType = 0  // "No Next Payload"
	PayloadSA      PayloadType = 33 // Security Association, RFC 7296 §3.3
	PayloadKE      PayloadType = 34 // Key Exchange, RFC 7296 §3.4
	PayloadIDi     PayloadType = 35 // Identification - Initiator, RFC 7296 §3.5
	PayloadIDr     PayloadType = 36 // Identification - Responder, RFC 7296 §3.5
	PayloadCERT    PayloadType = 37 // Certificate, RFC 7296 §3.6
	PayloadCERTREQ PayloadType = 38 // Certificate Request, RFC 7296 §3.7
	PayloadAUTH    PayloadType = 39 // Authentication, RFC 7296 §3.8
	PayloadNonce   PayloadType = 40 // Nonce (Ni, Nr), RFC 7296 §3.9
	PayloadN       PayloadType = 41 // Notify, RFC 7296 §3.10
	PayloadD       PayloadType = 42 // Delete, RFC 7296 §3.11
	PayloadV       PayloadType = 43 // Vendor ID, RFC 7296 §3.12
	PayloadTSi     PayloadType = 44 // Traffic Selector - Initiator, RFC 7296 §3.13
	PayloadTSr     PayloadType = 45 // Traffic Selector - Responder, RFC 7296 §3.13
	PayloadSK      PayloadType = 46 // Encrypted and Authenticated, RFC 7296 §3.14
	PayloadCP      PayloadType = 47 // Configuration, RFC 7296 §3.15
	PayloadEAP     PayloadType = 48 // Extensible Authentication, RFC 7296 §3.16
	PayloadGSPM    PayloadType = 49 // Generic Secure Password Methods, RFC 6467 (not decoded)
	PayloadIDg     PayloadType = 50 // Group Identification, G-IKEv2 (not decoded)
	PayloadGSA     PayloadType = 51 // Group Security Association, G-IKEv2 (not decoded)
	PayloadKD      PayloadType = 52 // Key Download, G-IKEv2 (not decoded)
	PayloadSKF     PayloadType = 53 // Encrypted and Authenticated Fragment, RFC 7383 §2.5
	PayloadPS      PayloadType = 54 // Puzzle Solution, RFC 8019 (not decoded)
)

var payloadNames = map[PayloadType]string{
	PayloadNone: "NONE", PayloadSA: "SA", PayloadKE: "KE", PayloadIDi: "IDi", PayloadIDr: "IDr",
	PayloadCERT: "CERT", PayloadCERTREQ: "CERTREQ", PayloadAUTH: "AUTH", PayloadNonce: "No",
	PayloadN: "N", PayloadD: "D", PayloadV: "V", PayloadTSi: "TSi", PayloadTSr: "TSr",
	PayloadSK: "SK", PayloadCP: "CP", PayloadEAP: "EAP", PayloadGSPM: "GSPM", PayloadIDg: "IDg",
	PayloadGSA: "GSA", PayloadKD: "KD", PayloadSKF: "SKF", PayloadPS: "PS",
}

// String returns the RFC 7296 notation (SA, KE, IDi, No, N, SK, ...), or
// PAYLOAD(n) for unassigned values.
func (t PayloadType) String() string { return regName(payloadNames, t, "PAYLOAD") }
