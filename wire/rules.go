package wire

// Rule says how often one payload type may appear in a message of one
// exchange and direction, and whether it may appear outside the SK payload.
type Rule struct {
	Type  PayloadType
	Min   int  // required count, waived in error replies (see ExchangeRules)
	Max   int  // -1 for no limit
	Plain bool // may appear outside SK (unprotected); otherwise only inside SK
}

// ExchangeRules is the payload table of one exchange type and direction,
// after strongSwan's encoding/message.c payload rules (written afresh from
// the RFCs cited in the table).
type ExchangeRules struct {
	Exchange  ExchangeType
	Response  bool
	Protected bool // an SK/SKF payload is required, unless every payload present is Plain
	Payloads  []Rule
	// Together lists payload types that appear all or none (SA with TSi and
	// TSr when a Child SA is created, RFC 7296 §1.3.1).
	Together [][]PayloadType
	// BareNotify lists status notifications that may form a reply on their
	// own (COOKIE, REDIRECT in an IKE_SA_INIT response). Error notify types
	// (1..16383) always may: a message carrying one is not held to Min or
	// Together (RFC 7296 §2.21).
	BareNotify []NotifyType
}

const many = -1

// Shorthands for the table below.
func plain(t PayloadType, min, max int) Rule { return Rule{Type: t, Min: min, Max: max, Plain: true} }
func sk(t PayloadType, min, max int) Rule    { return Rule{Type: t, Min: min, Max: max} }

var childTogether = [][]PayloadType{{PayloadSA, PayloadTSi, PayloadTSr}}

// exchangeRules is the table. Notify and Vendor ID payloads are allowed in
// every message; unknown non-critical payloads are ignored (RFC 7296 §2.5).
var exchangeRules = []ExchangeRules{
	// RFC 7296 §1.2: HDR, SAi1, KEi, Ni [, N(COOKIE)...] -->
	{Exchange: IKE_SA_INIT, Payloads: []Rule{
		plain(PayloadSA, 1, 1), plain(PayloadKE, 1, 1), plain(PayloadNonce, 1, 1),
		plain(PayloadN, 0, many), plain(PayloadV, 0, many),
	}},
	// <-- HDR, SAr1, KEr, Nr, [CERTREQ]; or N(COOKIE) / N(INVALID_KE_PAYLOAD)
	// / N(NO_PROPOSAL_CHOSEN) alone (RFC 7296 §1.2, §2.6, §1.3.1; RFC 5685 REDIRECT).
	{Exchange: IKE_SA_INIT, Response: true, Payloads: []Rule{
		plain(PayloadSA, 1, 1), plain(PayloadKE, 1, 1), plain(PayloadNonce, 1, 1),
		plain(PayloadCERTREQ, 0, many), plain(PayloadN, 0, many), plain(PayloadV, 0, many),
	}, BareNotify: []NotifyType{COOKIE, REDIRECT}},
	// RFC 7296 §1.2, §2.16 (EAP rounds), RFC 4739 (multiple auth), RFC 6023
	// (childless): HDR, SK {IDi, [CERT+], [CERTREQ+], [IDr], AUTH, [CP], SAi2, TSi, TSr}
	{Exchange: IKE_AUTH, Protected: true, Payloads: []Rule{
		sk(PayloadIDi, 0, 1), sk(PayloadCERT, 0, many), sk(PayloadCERTREQ, 0, many), sk(PayloadIDr, 0, 1),
		sk(PayloadAUTH, 0, 1), sk(PayloadEAP, 0, 1), sk(PayloadCP, 0, 1), sk(PayloadSA, 0, 1),
		sk(PayloadTSi, 0, 1), sk(PayloadTSr, 0, 1), sk(PayloadN, 0, many), sk(PayloadV, 0, many),
	}, Together: childTogether},
	// <-- HDR, SK {IDr, [CERT+], AUTH, [CP], SAr2, TSi, TSr}; or N(AUTHENTICATION_FAILED)
	{Exchange: IKE_AUTH, Response: true, Protected: true, Payloads: []Rule{
		sk(PayloadIDr, 0, 1), sk(PayloadCERT, 0, many), sk(PayloadAUTH, 0, 1), sk(PayloadEAP, 0, 1),
		sk(PayloadCP, 0, 1), sk(PayloadSA, 0, 1), sk(PayloadTSi, 0, 1), sk(PayloadTSr, 0, 1),
		sk(PayloadN, 0, many), sk(PayloadV, 0, many),
	}, Together: childTogether},
	// RFC 7296 §1.3: HDR, SK {[N(REKEY_SA)], SA, Ni, [KEi], [TSi, TSr]}
	// (TS absent for an IKE SA rekey, §1.3.2).
	{Exchange: CREATE_CHILD_SA, Protected: true, Payloads: []Rule{
		sk(PayloadSA, 1, 1), sk(PayloadNonce, 1, 1), sk(PayloadKE, 0, 1),
		sk(PayloadTSi, 0, 1), sk(PayloadTSr, 0, 1), sk(PayloadN, 0, many), sk(PayloadV, 0, many),
	}, Together: [][]PayloadType{{PayloadTSi, PayloadTSr}}},
	{Exchange: CREATE_CHILD_SA, Response: true, Protected: true, Payloads: []Rule{
		sk(PayloadSA, 1, 1), sk(PayloadNonce, 1, 1), sk(PayloadKE, 0, 1),
		sk(PayloadTSi, 0, 1), sk(PayloadTSr, 0, 1), sk(PayloadN, 0, many), sk(PayloadV, 0, many),
	}, Together: [][]PayloadType{{PayloadTSi, PayloadTSr}}},
	// RFC 7296 §1.4: HDR, SK {[N,] [D,] [CP,] ...}. Unprotected N only for
	// the out-of-SA error notifications of RFC 7296 §1.5.
	{Exchange: INFORMATIONAL, Protected: true, Payloads: []Rule{
		plain(PayloadN, 0, many), sk(PayloadD, 0, many), sk(PayloadCP, 0, 1), sk(PayloadV, 0, many),
	}},
	{Exchange: INFORMATIONAL, Response: true, Protected: true, Payloads: []Rule{
		plain(PayloadN, 0, many), sk(PayloadD, 0, many), sk(PayloadCP, 0, 1), sk(PayloadV, 0, many),
	}},
	// RFC 9242 §3: HDR, SK {...}; RFC 9370 §2.2.2 carries additional KEs here.
	{Exchange: IKE_INTERMEDIATE, Protected: true, Payloads: []Rule{
		sk(PayloadKE, 0, 1), sk(PayloadN, 0, many), sk(PayloadV, 0, many),
	}},
	{Exchange: IKE_INTERMEDIATE, Response: true, Protected: true, Payloads: []Rule{
		sk(PayloadKE, 0, 1), sk(PayloadN, 0, many), sk(PayloadV, 0, many),
	}},
	// RFC 9370 §2.2.4: HDR, SK {KEi(n), N(ADDITIONAL_KEY_EXCHANGE)}
	{Exchange: IKE_FOLLOWUP_KE, Protected: true, Payloads: []Rule{
		sk(PayloadKE, 1, 1), sk(PayloadN, 1, many), sk(PayloadV, 0, many),
	}},
	{Exchange: IKE_FOLLOWUP_KE, Response: true, Protected: true, Payloads: []Rule{
		sk(PayloadKE, 1, 1), sk(PayloadN, 0, many), sk(PayloadV, 0, many),
	}},
	// RFC 5723 §4.3.1: HDR, Ni, N(TICKET_OPAQUE) [,N+] --> <-- HDR, Nr [,N+]
	{Exchange: IKE_SESSION_RESUME, Payloads: []Rule{
		plain(PayloadNonce, 1, 1), plain(PayloadN, 1, many), plain(PayloadV, 0, many),
	}},
	{Exchange: IKE_SESSION_RESUME, Response: true, Payloads: []Rule{
		plain(PayloadNonce, 1, 1), plain(PayloadN, 0, many), plain(PayloadV, 0, many),
	}, BareNotify: []NotifyType{COOKIE}},
}

// RulesFor returns the payload rules of an exchange and direction, or nil
// for an exchange this package has no table for.
func RulesFor(ex ExchangeType, response bool) *ExchangeRules {
	for i := range exchangeRules {
		if r := &exchangeRules[i]; r.Exchange == ex && r.Response == response {
			return r
		}
	}
	return nil
}

// CheckRules checks a parsed message against the payload table of its
// exchange and direction (the R flag): which payloads may appear, how many
// times, and which must be inside SK. m.Inner must already hold the opened
// SK payloads (or the reassembled fragments). Violations, and exchanges
// without a table, are INVALID_SYNTAX *Error values.
func CheckRules(m *Message) error {
	h := &m.Header
	dir := "request"
	if h.IsResponse() {
		dir = "response"
	}
	r := RulesFor(h.Exchange, h.IsResponse())
	if r == nil {
		return errSyntax("no payload rules for exchange %v", h.Exchange)
	}
	protected := m.Encrypted() != nil || m.Fragment() != nil
	if protected && !r.Protected {
		return errSyntax("%v %s must not carry an SK payload", h.Exchange, dir)
	}
	if !protected && len(m.Inner) > 0 {
		return errSyntax("inner payloads without an SK payload")
	}
	counts := map[PayloadType]int{}
	errorReply := false
	visit := func(p Payload, outer bool) error {
		t := p.Type()
		if outer && (t == PayloadSK || t == PayloadSKF) {
			return nil
		}
		if n, ok := p.(*Notify); ok && (n.NotifyType.IsError() || containsNotify(r.BareNotify, n.NotifyType)) {
			errorReply = true
		}
		rule := r.rule(t)
		if rule == nil {
			if raw, ok := p.(*RawPayload); ok && !raw.Critical {
				return nil // RFC 7296 §2.5: skip unknown non-critical payloads
			}
			return errSyntax("%v payload not allowed in %v %s", t, h.Exchange, dir)
		}
		// Outside SK only payloads marked Plain, and in a protected exchange
		// only when there is no SK payload at all (RFC 7296 §1.5 errors).
		if outer && (!rule.Plain || (r.Protected && protected)) {
			return errSyntax("%v payload outside SK in %v %s", t, h.Exchange, dir)
		}
		counts[t]++
		return nil
	}
	for _, p := range m.Payloads {
		if err := visit(p, true); err != nil {
			return err
		}
	}
	for _, p := range m.Inner {
		if err := visit(p, false); err != nil {
			return err
		}
	}
	if r.Protected && !protected && len(m.Payloads) == 0 {
		return errSyntax("%v %s without an SK payload", h.Exchange, dir)
	}
	for _, rule := range r.Payloads {
		c := counts[rule.Type]
		if rule.Max != many && c > rule.Max {
			return errSyntax("%d %v payloads in %v %s, at most %d allowed", c, rule.Type, h.Exchange, dir, rule.Max)
		}
		if !errorReply && c < rule.Min {
			return errSyntax("%v payload missing from %v %s", rule.Type, h.Exchange, dir)
		}
	}
	if !errorReply {
		for _, group := range r.Together {
			if !together(group, counts) {
				return errSyntax("payloads %v must appear together in %v %s", group, h.Exchange, dir)
			}
		}
	}
	return nil
}

func (r *ExchangeRules) rule(t PayloadType) *Rule {
	for i := range r.Payloads {
		if r.Payloads[i].Type == t {
			return &r.Payloads[i]
		}
	}
	return nil
}

func containsNotify(list []NotifyType, t NotifyType) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

// together reports whether the types in group are all present or all absent.
func together(group []PayloadType, counts map[PayloadType]int) bool {
	present := 0
	for _, t := range group {
		if counts[t] > 0 {
			present++
		}
	}
	return present == 0 || present == len(group)
}
