package broker

import (
	"fmt"
	"strings"
)

// Subjects of the trust boundary.
const (
	// IntakePrefix is where, in the service account, the devices' and
	// labs' messages arrive: their accounts import tapproof.intake.<x>.> as
	// tapproof.<x>.>, so a device publishes on tapproof.readings.… and
	// tapproof's intake receives tapproof.intake.readings.….
	IntakePrefix = "tapproof.intake"
	// AuthSubject is where the server sends authorization requests.
	AuthSubject = "$SYS.REQ.USER.AUTH"
)

// Published subject spaces, each imported into one outside account.
var imports = []struct {
	account, subject string
}{
	{DevicesAccount, "tapproof.readings"},
	{LabsAccount, "tapproof.labsamples"},
	{LabsAccount, "tapproof.invalidations"},
}

// IntakeSubject is the subject, in the service account, on which a message
// published on subject by a device or lab arrives.
func IntakeSubject(subject string) string {
	return IntakePrefix + "." + strings.TrimPrefix(subject, "tapproof.")
}

// ServerConfig is what the broker's configuration is rendered from.
type ServerConfig struct {
	Keys *Keys
	TLS  TLSFiles
	// Listen is the client address, host:port; empty leaves it to the
	// embedding program.
	Listen string
	// StoreDir is JetStream's directory; empty leaves it to the embedding
	// program.
	StoreDir string
	// ServerName names the server; empty leaves it to the embedding program.
	ServerName string
	// Cluster, if set, makes the server one member of a NATS cluster.
	Cluster *Cluster
	// Limits bounds the accounts' connections; zero fields take the
	// defaults.
	Limits Limits
}

// Default connection limits, per account and per server.
const (
	DefaultDeviceConnections  = 10000
	DefaultLabConnections     = 256
	DefaultServiceConnections = 256
)

// Limits bounds how many connections each account holds at once on one
// server. A party admitted by the callout is bounded per connection too:
// MaxPartyPayload per message and maxPartySubs subscriptions, set both on
// its account and in the user claims the callout issues. NATS has no
// per-user connection limit for configured or callout users, so a
// device's own connections count against its account's limit only.
type Limits struct {
	// DeviceConnections bounds the DEVICES account: every enrolled
	// sensor's connections together. Default DefaultDeviceConnections.
	DeviceConnections int
	// LabConnections bounds the LABS account: labs and reviewers.
	// Default DefaultLabConnections.
	LabConnections int
	// ServiceConnections bounds the TAPPROOF account: tapproof serve's
	// own connections (four per replica) and the operator's CLI.
	// Default DefaultServiceConnections.
	ServiceConnections int
}

func (l Limits) withDefaults() Limits {
	if l.DeviceConnections <= 0 {
		l.DeviceConnections = DefaultDeviceConnections
	}
	if l.LabConnections <= 0 {
		l.LabConnections = DefaultLabConnections
	}
	if l.ServiceConnections <= 0 {
		l.ServiceConnections = DefaultServiceConnections
	}
	return l
}

// operatorPublish is what the operator's user may publish: JetStream's
// read requests only. It reads a stream or a bucket message by message
// (STREAM.MSG.GET, DIRECT.GET), never through a consumer: NATS cannot
// tell creating a consumer from updating one, so a user that may create
// consumers may change the filter of tapproof's own (the exceedance
// watch's, say) and silence it. It may not publish on any of tapproof's
// subjects, nor touch a stream, a bucket's contents or a consumer.
var operatorPublish = []string{
	"$JS.API.INFO",
	"$JS.API.STREAM.NAMES",
	"$JS.API.STREAM.LIST",
	"$JS.API.STREAM.INFO.*",
	"$JS.API.STREAM.MSG.GET.*",
	"$JS.API.DIRECT.GET.>",
	"$JS.API.CONSUMER.NAMES.*",
	"$JS.API.CONSUMER.LIST.*",
	"$JS.API.CONSUMER.INFO.*.*",
}

// operatorSubscribe is what the operator's user may subscribe to: replies
// to its own requests and consumers, and the alerts, checkpoints,
// suppressions and rejections as they are published.
var operatorSubscribe = []string{
	"_INBOX.>",
	"tapproof.alerts.>",
	"tapproof.checkpoints.>",
	"tapproof.suppressed.>",
	"tapproof.rejected.>",
}

func quoted(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// Cluster is a server's part in a NATS cluster: its route listener and the
// routes to the other members, over mutual TLS (each member presents the
// route certificate, EnsureRouteCert, and verifies the other's against the
// CA) and authenticated with a secret every member shares
// (LoadOrCreateRouteSecret). JetStream runs on every member; the streams'
// replicas are spread over them.
type Cluster struct {
	Name   string   // the cluster's name, the same on every member
	Listen string   // this member's route listener, host:port
	Routes []string // every member's route listener, host:port (this one's may be among them)
	Secret string   // the route secret
	TLS    TLSFiles // the route certificate, its key and the CA
	// Advertise, if set, is the address this member tells the others to
	// reach it at, in place of Listen: a load balancer's, say.
	Advertise string
}

// Render returns the nats-server configuration: TLS on the client
// listener, the accounts with their connection limits, tapproof's own
// nkey users with their permissions, and the auth callout, encrypted with
// Keys.XKey, that admits everyone else or nobody. The embedded server loads it, and
// `tapproof broker config` writes it for an external server.
func (c ServerConfig) Render() string {
	lim := c.Limits.withDefaults()
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("# tapproof NATS broker: generated by tapproof; see docs/operations.md.")
	p("# Every connection is authenticated: tapproof's services and the operator by")
	p("# their nkeys below, devices, labs and reviewers by the auth callout, which")
	p("# admits only keys enrolled in the log. Nobody connects anonymously.")
	if c.ServerName != "" {
		p("server_name: %q", c.ServerName)
	}
	if c.Listen != "" {
		p("listen: %q", c.Listen)
	}
	if c.StoreDir != "" {
		p("jetstream { store_dir: %q }", c.StoreDir)
	}
	p("max_payload: %d", MaxPayload)
	if c.Cluster != nil {
		cl := c.Cluster
		p("cluster {")
		p("  name: %q", cl.Name)
		p("  listen: %q", cl.Listen)
		if cl.Advertise != "" {
			p("  advertise: %q", cl.Advertise)
		}
		p("  authorization { user: %q, password: %q, timeout: 5 }", routeUser, cl.Secret)
		p("  tls {")
		p("    cert_file: %q", cl.TLS.Cert)
		p("    key_file: %q", cl.TLS.Key)
		p("    ca_file: %q", cl.TLS.CA)
		p("    verify: true")
		p("    timeout: 5")
		p("  }")
		p("  routes: [")
		for _, r := range cl.Routes {
			p("    %q", "tls://"+routeUser+":"+cl.Secret+"@"+r)
		}
		p("  ]")
		p("}")
	}
	p("tls {")
	p("  cert_file: %q", c.TLS.Cert)
	p("  key_file: %q", c.TLS.Key)
	p("  timeout: 5")
	p("}")
	p("accounts {")
	p("  %s {", ServiceAccount)
	p("    jetstream: enabled")
	p("    limits { max_connections: %d }", lim.ServiceConnections)
	p("    users: [")
	p("      # tapproof serve: its streams, buckets and intake; never the callout's subjects")
	p("      { nkey: %s, permissions: { publish: { deny: [\"$SYS.>\"] }, subscribe: { deny: [\"$SYS.>\"] } } }", publicKey(c.Keys.Service))
	p("      # tapproof serve's callout responder: the authorization requests, and one answer to each")
	p("      { nkey: %s, permissions: { publish: { deny: [\">\"] }, subscribe: { allow: [%q] }, allow_responses: { max: 1, expires: \"10s\" } } }", publicKey(c.Keys.Callout), AuthSubject)
	p("      # the operator's nats CLI: reads only")
	p("      { nkey: %s, permissions: {", publicKey(c.Keys.Operator))
	p("          publish: { allow: [%s] }", quoted(operatorPublish))
	p("          subscribe: { allow: [%s] } } }", quoted(operatorSubscribe))
	p("    ]")
	p("    exports: [")
	for _, im := range imports {
		p("      { service: %q, accounts: [%s] }", IntakeSubject(im.subject)+".>", im.account)
	}
	p("    ]")
	p("  }")
	for _, acc := range []struct {
		name  string
		conns int
	}{{DevicesAccount, lim.DeviceConnections}, {LabsAccount, lim.LabConnections}} {
		p("  %s {", acc.name)
		p("    limits { max_connections: %d, max_subscriptions: %d, max_payload: %d }", acc.conns, maxPartySubs, MaxPartyPayload)
		p("    imports: [")
		for _, im := range imports {
			if im.account == acc.name {
				p("      { service: { account: %s, subject: %q }, to: %q }", ServiceAccount, IntakeSubject(im.subject)+".>", im.subject+".>")
			}
		}
		p("    ]")
		p("  }")
	}
	p("  %s {", SystemAccount)
	p("    users: [ { nkey: %s } ]  # tapproof serve, to disconnect revoked devices", publicKey(c.Keys.System))
	p("  }")
	p("}")
	p("system_account: %s", SystemAccount)
	p("authorization {")
	p("  timeout: 5")
	p("  auth_callout {")
	p("    issuer: %s", publicKey(c.Keys.Issuer))
	p("    xkey: %s", publicKey(c.Keys.XKey))
	p("    account: %s", ServiceAccount)
	p("    auth_users: [ %s, %s, %s, %s ]", publicKey(c.Keys.Service), publicKey(c.Keys.Callout), publicKey(c.Keys.Operator), publicKey(c.Keys.System))
	p("  }")
	p("}")
	return b.String()
}
