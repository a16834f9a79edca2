package wire

// ProtocolID is the IANA "IKEv2 Security Protocol Identifiers" registry
// (RFC 7296 §3.3.1), used by SA proposals, Notify and Delete payloads.
type ProtocolID uint8

const (
	ProtoNone                 ProtocolID = 0 // Notify payloads not about an SA
	ProtoIKE                  ProtocolID = 1
	ProtoAH                   ProtocolID = 2
	ProtoESP                  ProtocolID = 3
	ProtoFC_ESP_HEADER        ProtocolID = 4 // RFC 4595
	ProtoFC_CT_AUTHENTICATION ProtocolID = 5 // RFC 4595
	ProtoGIKE_UPDATE          ProtocolID = 6 // G-IKEv2
)

var protocolNames = map[ProtocolID]string{
	ProtoNone: "NONE", ProtoIKE: "IKE", ProtoAH: "AH", ProtoESP: "ESP", ProtoFC_ESP_HEADER: "FC_ESP_HEADER",
	ProtoFC_CT_AUTHENTICATION: "FC_CT_AUTHENTICATION", ProtoGIKE_UPDATE: "GIKE_UPDATE",
}

func (p ProtocolID) String() string { return regName(protocolNames, p, "PROTO") }

// IDType is the IANA "IKEv2 Identification Payload ID Types" registry
// (RFC 7296 §3.5).
type IDType uint8

const (
	ID_IPV4_ADDR   IDType = 1
	ID_FQDN        IDType = 2
	ID_RFC822_ADDR IDType = 3
	ID_IPV6_ADDR   IDType = 5
	ID_DER_ASN1_DN IDType = 9
	ID_DER_ASN1_GN IDType = 10
	ID_KEY_ID      IDType = 11
	ID_FC_NAME     IDType = 12 // RFC 4595
	ID_NULL        IDType = 13 // RFC 7619
)

var idTypeNames = map[IDType]string{
	ID_IPV4_ADDR: "ID_IPV4_ADDR", ID_FQDN: "ID_FQDN", ID_RFC822_ADDR: "ID_RFC822_ADDR",
	ID_IPV6_ADDR: "ID_IPV6_ADDR", ID_DER_ASN1_DN: "ID_DER_ASN1_DN", ID_DER_ASN1_GN: "ID_DER_ASN1_GN",
	ID_KEY_ID: "ID_KEY_ID", ID_FC_NAME: "ID_FC_NAME", ID_NULL: "ID_NULL",
}

func (t IDType) String() string { return regName(idTypeNames, t, "ID") }

// AuthMethod is the IANA "IKEv2 Authentication Method" registry
// (RFC 7296 §3.8).
type AuthMethod uint8

const (
	AuthRSASignature          AuthMethod = 1  // RSA Digital Signature (PKCS#1 v1.5, SHA-1)
	AuthSharedKeyMIC          AuthMethod = 2  // Shared Key Message Integrity Code
	AuthDSSSignature          AuthMethod = 3  // DSS Digital Signature
	AuthECDSA256              AuthMethod = 9  // ECDSA with SHA-256 on P-256, RFC 4754
	AuthECDSA384              AuthMethod = 10 // ECDSA with SHA-384 on P-384, RFC 4754
	AuthECDSA521              AuthMethod = 11 // ECDSA with SHA-512 on P-521, RFC 4754
	AuthGenericSecurePassword AuthMethod = 12 // RFC 6467
	AuthNULL                  AuthMethod = 13 // RFC 7619
	AuthDigitalSignature      AuthMethod = 14 // RFC 7427
)

var authNames = map[AuthMethod]string{
	AuthRSASignature: "RSA_SIG", AuthSharedKeyMIC: "PSK", AuthDSSSignature: "DSS_SIG",
	AuthECDSA256: "ECDSA_SHA256_P256", AuthECDSA384: "ECDSA_SHA384_P384", AuthECDSA521: "ECDSA_SHA512_P521",
	AuthGenericSecurePassword: "GSPM", AuthNULL: "NULL", AuthDigitalSignature: "DIGITAL_SIGNATURE",
}

func (m AuthMethod) String() string { return regName(authNames, m, "AUTH_METHOD") }

// CertEncoding is the IANA "IKEv2 Certificate Encodings" registry
// (RFC 7296 §3.6), used by CERT and CERTREQ.
type CertEncoding uint8

const (
	CertPKCS7X509     CertEncoding = 1
	CertPGP           CertEncoding = 2
	CertDNSSignedKey  CertEncoding = 3
	CertX509Signature CertEncoding = 4
	CertKerberos      CertEncoding = 6
	CertCRL           CertEncoding = 7
	CertARL           CertEncoding = 8
	CertSPKI          CertEncoding = 9
	CertX509Attribute CertEncoding = 10
	CertRawRSAKey     CertEncoding = 11 // deprecated by RFC 7670
	CertHashURLX509   CertEncoding = 12
	CertHashURLBundle CertEncoding = 13
	CertOCSPContent   CertEncoding = 14 // RFC 4806
	CertRawPublicKey  CertEncoding = 15 // RFC 7670
)

var certNames = map[CertEncoding]string{
	CertPKCS7X509: "PKCS7_X509", CertPGP: "PGP", CertDNSSignedKey: "DNS_SIGNED_KEY",
	CertX509Signature: "X509_SIGNATURE", CertKerberos: "KERBEROS", CertCRL: "CRL", CertARL: "ARL",
	CertSPKI: "SPKI", CertX509Attribute: "X509_ATTRIBUTE", CertRawRSAKey: "RAW_RSA_KEY",
	CertHashURLX509: "HASH_URL_X509", CertHashURLBundle: "HASH_URL_X509_BUNDLE",
	CertOCSPContent: "OCSP_CONTENT", CertRawPublicKey: "RAW_PUBLIC_KEY",
}

func (c CertEncoding) String() string { return regName(certNames, c, "CERT") }

// TSType is the IANA "IKEv2 Traffic Selector Types" registry (RFC 7296
// §3.13.1). This package decodes only the two address-range types.
type TSType uint8

const (
	TS_IPV4_ADDR_RANGE TSType = 7
	TS_IPV6_ADDR_RANGE TSType = 8
	TS_FC_ADDR_RANGE   TSType = 9  // RFC 4595 (not decoded)
	TS_SECLABEL        TSType = 10 // RFC 9478 (not decoded)
)

var tsTypeNames = map[TSType]string{
	TS_IPV4_ADDR_RANGE: "TS_IPV4_ADDR_RANGE", TS_IPV6_ADDR_RANGE: "TS_IPV6_ADDR_RANGE",
	TS_FC_ADDR_RANGE: "TS_FC_ADDR_RANGE", TS_SECLABEL: "TS_SECLABEL",
}

func (t TSType) String() string { return regName(tsTypeNames, t, "TS") }

// HashAlgorithm is the IANA "IKEv2 Hash Algorithms" registry (RFC 7427 §7),
// carried in SIGNATURE_HASH_ALGORITHMS notifications as 2-octet values.
type HashAlgorithm uint16

const (
	HashSHA1        HashAlgorithm = 1
	HashSHA2_256    HashAlgorithm = 2
	HashSHA2_384    HashAlgorithm = 3
	HashSHA2_512    HashAlgorithm = 4
	HashIdentity    HashAlgorithm = 5 // RFC 8420
	HashSTREEBOG256 HashAlgorithm = 6 // RFC 9385
	HashSTREEBOG512 HashAlgorithm = 7 // RFC 9385
)

var hashNames = map[HashAlgorithm]string{
	HashSHA1: "SHA1", HashSHA2_256: "SHA2_256", HashSHA2_384: "SHA2_384", HashSHA2_512: "SHA2_512",
	HashIdentity: "IDENTITY", HashSTREEBOG256: "STREEBOG_256", HashSTREEBOG512: "STREEBOG_512",
}

func (h HashAlgorithm) String() string { return regName(hashNames, h, "HASH") }

// CFGType is the IANA "IKEv2 Configuration Payload CFG Types" registry
// (RFC 7296 §3.15).
type CFGType uint8

const (
	CFG_REQUEST CFGType = 1
	CFG_REPLY   CFGType = 2
	CFG_SET     CFGType = 3
	CFG_ACK     CFGType = 4
)

var cfgNames = map[CFGType]string{CFG_REQUEST: "CFG_REQUEST", CFG_REPLY: "CFG_REPLY", CFG_SET: "CFG_SET", CFG_ACK: "CFG_ACK"}

func (t CFGType) String() string { return regName(cfgNames, t, "CFG") }

// CPAttrType is the IANA "IKEv2 Configuration Payload Attribute Types"
// registry (RFC 7296 §3.15.1), 15 bits.
type CPAttrType uint16

const (
	INTERNAL_IP4_ADDRESS              CPAttrType = 1
	INTERNAL_IP4_NETMASK              CPAttrType = 2
	INTERNAL_IP4_DNS                  CPAttrType = 3
	INTERNAL_IP4_NBNS                 CPAttrType = 4
	INTERNAL_IP4_DHCP                 CPAttrType = 6
	APPLICATION_VERSION               CPAttrType = 7
	INTERNAL_IP6_ADDRESS              CPAttrType = 8
	INTERNAL_IP6_DNS                  CPAttrType = 10
	INTERNAL_IP6_DHCP                 CPAttrType = 12
	INTERNAL_IP4_SUBNET               CPAttrType = 13
	SUPPORTED_ATTRIBUTES              CPAttrType = 14
	INTERNAL_IP6_SUBNET               CPAttrType = 15
	MIP6_HOME_PREFIX                  CPAttrType = 16 // RFC 5026
	INTERNAL_IP6_LINK                 CPAttrType = 17 // RFC 5739
	INTERNAL_IP6_PREFIX               CPAttrType = 18 // RFC 5739
	HOME_AGENT_ADDRESS                CPAttrType = 19 // 3GPP
	P_CSCF_IP4_ADDRESS                CPAttrType = 20 // RFC 7651
	P_CSCF_IP6_ADDRESS                CPAttrType = 21 // RFC 7651
	FTT_KAT                           CPAttrType = 22 // 3GPP
	EXTERNAL_SOURCE_IP4_NAT_INFO      CPAttrType = 23 // 3GPP
	TIMEOUT_PERIOD_FOR_LIVENESS_CHECK CPAttrType = 24 // 3GPP
	INTERNAL_DNS_DOMAIN               CPAttrType = 25 // RFC 8598
	INTERNAL_DNSSEC_TA                CPAttrType = 26 // RFC 8598
	ENCDNS_IP4                        CPAttrType = 27 // RFC 9464
	ENCDNS_IP6                        CPAttrType = 28 // RFC 9464
	ENCDNS_DIGEST_INFO                CPAttrType = 29 // RFC 9464
)

var cpAttrNames = map[CPAttrType]string{
	INTERNAL_IP4_ADDRESS: "INTERNAL_IP4_ADDRESS", INTERNAL_IP4_NETMASK: "INTERNAL_IP4_NETMASK",
	INTERNAL_IP4_DNS: "INTERNAL_IP4_DNS", INTERNAL_IP4_NBNS: "INTERNAL_IP4_NBNS",
	INTERNAL_IP4_DHCP: "INTERNAL_IP4_DHCP", APPLICATION_VERSION: "APPLICATION_VERSION",
	INTERNAL_IP6_ADDRESS: "INTERNAL_IP6_ADDRESS", INTERNAL_IP6_DNS: "INTERNAL_IP6_DNS",
	INTERNAL_IP6_DHCP: "INTERNAL_IP6_DHCP", INTERNAL_IP4_SUBNET: "INTERNAL_IP4_SUBNET",
	SUPPORTED_ATTRIBUTES: "SUPPORTED_ATTRIBUTES", INTERNAL_IP6_SUBNET: "INTERNAL_IP6_SUBNET",
	MIP6_HOME_PREFIX: "MIP6_HOME_PREFIX", INTERNAL_IP6_LINK: "INTERNAL_IP6_LINK",
	INTERNAL_IP6_PREFIX: "INTERNAL_IP6_PREFIX", HOME_AGENT_ADDRESS: "HOME_AGENT_ADDRESS",
	P_CSCF_IP4_ADDRESS: "P_CSCF_IP4_ADDRESS", P_CSCF_IP6_ADDRESS: "P_CSCF_IP6_ADDRESS", FTT_KAT: "FTT_KAT",
	EXTERNAL_SOURCE_IP4_NAT_INFO:      "EXTERNAL_SOURCE_IP4_NAT_INFO",
	TIMEOUT_PERIOD_FOR_LIVENESS_CHECK: "TIMEOUT_PERIOD_FOR_LIVENESS_CHECK",
	INTERNAL_DNS_DOMAIN:               "INTERNAL_DNS_DOMAIN", INTERNAL_DNSSEC_TA: "INTERNAL_DNSSEC_TA",
	ENCDNS_IP4: "ENCDNS_IP4", ENCDNS_IP6: "ENCDNS_IP6", ENCDNS_DIGEST_INFO: "ENCDNS_DIGEST_INFO",
}

func (t CPAttrType) String() string { return regName(cpAttrNames, t, "CP_ATTR") }
