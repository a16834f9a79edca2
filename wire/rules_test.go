package wire

import (
	"errors"
	"strings"
	"testing"
)

func n(t NotifyType) *Notify { return &Notify{NotifyType: t} }

var (
	sa    = &SA{Proposals: []Proposal{{Number: 1, Protocol: ProtoIKE}}}
	ke    = &KE{Group: KECurve25519, Data: make([]byte, 32)}
	nonce = &Nonce{Data: make([]byte, 32)}
	idi   = &ID{IDType: ID_FQDN, Data: []byte("a")}
	idr   = &ID{Responder: true, IDType: ID_FQDN, Data: []byte("b")}
	auth  = &Auth{Method: AuthSharedKeyMIC, Data: make([]byte, 32)}
	tsi   = &TS{}
	tsr   = &TS{Responder: true}
)

func TestCheckRules(t *testing.T) {
	sk := &Encrypted{NextPayload: PayloadIDi}
	tests := []struct {
		name     string
		ex       ExchangeType
		response bool
		outer    []Payload
		inner    []Payload
		wantErr  string // substring, "" for success
	}{
		// IKE_SA_INIT
		{"init request", IKE_SA_INIT, false, []Payload{sa, ke, nonce, n(NAT_DETECTION_SOURCE_IP)}, nil, ""},
		{"init request with cookie", IKE_SA_INIT, false, []Payload{n(COOKIE), sa, ke, nonce}, nil, ""},
		{"init request without KE", IKE_SA_INIT, false, []Payload{sa, nonce}, nil, "KE payload missing"},
		{"init request two SAs", IKE_SA_INIT, false, []Payload{sa, sa, ke, nonce}, nil, "2 SA payloads"},
		{"init request with SK", IKE_SA_INIT, false, []Payload{sa, ke, nonce, sk}, nil, "must not carry an SK"},
		{"init request with IDi", IKE_SA_INIT, false, []Payload{sa, ke, nonce, idi}, nil, "IDi payload not allowed"},
		{"init response", IKE_SA_INIT, true, []Payload{sa, ke, nonce, &CertReq{}, &CertReq{}}, nil, ""},
		{"init response COOKIE alone", IKE_SA_INIT, true, []Payload{n(COOKIE)}, nil, ""},
		{"init response INVALID_KE alone", IKE_SA_INIT, true, []Payload{n(INVALID_KE_PAYLOAD)}, nil, ""},
		{"init response NO_PROPOSAL_CHOSEN", IKE_SA_INIT, true, []Payload{n(NO_PROPOSAL_CHOSEN)}, nil, ""},
		{"init response status notify alone", IKE_SA_INIT, true, []Payload{n(NAT_DETECTION_SOURCE_IP)}, nil, "SA payload missing"},
		{"init response unknown non-critical", IKE_SA_INIT, true, []Payload{sa, ke, nonce, &RawPayload{PType: 99}}, nil, ""},
		{"init response unknown critical", IKE_SA_INIT, true, []Payload{sa, ke, nonce, &RawPayload{PType: 99, Critical: true}}, nil, "not allowed"},
		// IKE_AUTH
		{"auth request", IKE_AUTH, false, []Payload{sk}, []Payload{idi, auth, sa, tsi, tsr}, ""},
		{"auth request childless", IKE_AUTH, false, []Payload{sk}, []Payload{idi, auth}, ""},
		{"auth request EAP round", IKE_AUTH, false, []Payload{sk}, []Payload{&EAP{}}, ""},
		{"auth request SA without TS", IKE_AUTH, false, []Payload{sk}, []Payload{idi, auth, sa}, "must appear together"},
		{"auth request outside SK", IKE_AUTH, false, []Payload{idi, auth}, nil, "outside SK"},
		{"auth request two AUTH", IKE_AUTH, false, []Payload{sk}, []Payload{idi, auth, auth}, "2 AUTH"},
		{"auth request KE", IKE_AUTH, false, []Payload{sk}, []Payload{idi, auth, ke}, "KE payload not allowed"},
		{"auth request empty unprotected", IKE_AUTH, false, nil, nil, "without an SK"},
		{"auth response", IKE_AUTH, true, []Payload{sk}, []Payload{idr, auth, sa, tsi, tsr}, ""},
		{"auth response AUTHENTICATION_FAILED", IKE_AUTH, true, []Payload{sk}, []Payload{n(AUTHENTICATION_FAILED)}, ""},
		{"auth response child failed", IKE_AUTH, true, []Payload{sk}, []Payload{idr, auth, n(TS_UNACCEPTABLE)}, ""},
		{"auth response IDi", IKE_AUTH, true, []Payload{sk}, []Payload{idi}, "IDi payload not allowed"},
		// CREATE_CHILD_SA
		{"child create", CREATE_CHILD_SA, false, []Payload{sk}, []Payload{sa, nonce, ke, tsi, tsr}, ""},
		{"child rekey", CREATE_CHILD_SA, false, []Payload{sk}, []Payload{n(REKEY_SA), sa, nonce, tsi, tsr}, ""},
		{"IKE rekey", CREATE_CHILD_SA, false, []Payload{sk}, []Payload{sa, nonce, ke}, ""},
		{"child without nonce", CREATE_CHILD_SA, false, []Payload{sk}, []Payload{sa, tsi, tsr}, "No payload missing"},
		{"child TSi only", CREATE_CHILD_SA, false, []Payload{sk}, []Payload{sa, nonce, tsi}, "together"},
		{"child response NO_ADDITIONAL_SAS", CREATE_CHILD_SA, true, []Payload{sk}, []Payload{n(NO_ADDITIONAL_SAS)}, ""},
		// INFORMATIONAL
		{"liveness", INFORMATIONAL, false, []Payload{sk}, nil, ""},
		{"delete", INFORMATIONAL, false, []Payload{sk}, []Payload{&Delete{Protocol: ProtoESP, SPIs: []uint32{1}}, &Delete{Protocol: ProtoAH}}, ""},
		{"unprotected INVALID_IKE_SPI", INFORMATIONAL, true, []Payload{n(INVALID_IKE_SPI)}, nil, ""},
		{"unprotected N next to SK", INFORMATIONAL, false, []Payload{n(INITIAL_CONTACT), sk}, nil, "outside SK"},
		{"unprotected delete", INFORMATIONAL, false, []Payload{&Delete{Protocol: ProtoIKE}}, nil, "outside SK"},
		{"informational SA", INFORMATIONAL, false, []Payload{sk}, []Payload{sa}, "SA payload not allowed"},
		{"informational empty unprotected", INFORMATIONAL, false, nil, nil, "without an SK"},
		// IKE_INTERMEDIATE, IKE_FOLLOWUP_KE, IKE_SESSION_RESUME
		{"intermediate", IKE_INTERMEDIATE, false, []Payload{sk}, []Payload{ke}, ""},
		{"intermediate two KE", IKE_INTERMEDIATE, true, []Payload{sk}, []Payload{ke, ke}, "2 KE"},
		{"followup", IKE_FOLLOWUP_KE, false, []Payload{sk}, []Payload{ke, n(ADDITIONAL_KEY_EXCHANGE)}, ""},
		{"followup without N", IKE_FOLLOWUP_KE, false, []Payload{sk}, []Payload{ke}, "N payload missing"},
		{"resume", IKE_SESSION_RESUME, false, []Payload{nonce, n(TICKET_OPAQUE)}, nil, ""},
		{"resume response", IKE_SESSION_RESUME, true, []Payload{nonce}, nil, ""},
		{"unknown exchange", GSA_AUTH, false, []Payload{sk}, nil, "no payload rules"},
		{"inner without SK", INFORMATIONAL, false, nil, []Payload{n(INITIAL_CONTACT)}, "without an SK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Message{Header: Header{Exchange: tc.ex}, Payloads: tc.outer, Inner: tc.inner}
			if tc.response {
				m.Header.Flags = FlagResponse
			}
			err := CheckRules(m)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var we *Error
			if !errors.As(err, &we) || we.Notify != INVALID_SYNTAX || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want INVALID_SYNTAX containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRulesTableShape(t *testing.T) {
	for _, ex := range []ExchangeType{IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL, IKE_INTERMEDIATE, IKE_FOLLOWUP_KE, IKE_SESSION_RESUME} {
		for _, resp := range []bool{false, true} {
			r := RulesFor(ex, resp)
			if r == nil {
				t.Fatalf("no rules for %v response=%v", ex, resp)
			}
			if r.rule(PayloadN) == nil {
				t.Errorf("%v: Notify not allowed", ex)
			}
			for _, rule := range r.Payloads {
				if rule.Max != many && rule.Max < rule.Min {
					t.Errorf("%v %v: max %d < min %d", ex, rule.Type, rule.Max, rule.Min)
				}
				if rule.Type == PayloadSK || rule.Type == PayloadSKF {
					t.Errorf("%v: rule for %v", ex, rule.Type)
				}
				if !r.Protected && !rule.Plain {
					t.Errorf("%v: %v must be in SK of an unprotected exchange", ex, rule.Type)
				}
			}
		}
	}
}
