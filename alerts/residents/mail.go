package residents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// SMTP defaults.
const (
	DefaultSMTPPort    = 587
	DefaultSMTPTimeout = 30 * time.Second
)

// SMTP TLS policies, the values of SMTPConfig.TLS.
const (
	SMTPTLSMandatory     = "mandatory"     // STARTTLS required (default)
	SMTPTLSOpportunistic = "opportunistic" // STARTTLS if offered
	SMTPTLSNone          = "none"          // plain text: loopback test servers only
)

// Email is one plain-text message.
type Email struct {
	To      string
	Subject string
	Text    string
	// MessageID, without angle brackets, is the same on every attempt so
	// that receivers can drop a duplicate.
	MessageID string
	// Unsubscribe is the one-click unsubscribe URL (RFC 8058).
	Unsubscribe string
	// Language is the language of Subject and Text (Content-Language,
	// RFC 3282), if known.
	Language string
}

// Mailer sends email. *SMTPMailer implements it.
type Mailer interface {
	Send(ctx context.Context, e Email) error
}

// SMTPConfig configures an SMTPMailer. Password is a secret; the
// configuration logs without it.
type SMTPConfig struct {
	Host     string
	Port     int    // DefaultSMTPPort if zero
	Username string // no authentication if empty
	Password string
	// From is the sender address, e.g. "alerts@water.example.org".
	From string
	// TLS is SMTPTLSMandatory (default), SMTPTLSOpportunistic or SMTPTLSNone.
	TLS     string
	Timeout time.Duration // DefaultSMTPTimeout if zero
}

// Validate checks c.
func (c SMTPConfig) Validate() error {
	if c.Host == "" {
		return errors.New("smtp: host is required")
	}
	if c.Port < 0 || c.Port > 65535 || c.Timeout < 0 {
		return errors.New("smtp: port or timeout out of range")
	}
	if a, err := mail.ParseAddress(c.From); err != nil || a.Address == "" {
		return errors.New("smtp: from must be an email address")
	}
	switch c.TLS {
	case "", SMTPTLSMandatory, SMTPTLSOpportunistic, SMTPTLSNone:
	default:
		return fmt.Errorf("smtp: tls %q must be mandatory, opportunistic or none", c.TLS)
	}
	return nil
}

// LogValue logs c without its password.
func (c SMTPConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", c.Host), slog.Int("port", c.Port),
		slog.Bool("auth", c.Username != ""), slog.String("tls", c.TLS))
}

// SMTPMailer sends email through an SMTP server with go-mail, one
// connection per message.
type SMTPMailer struct{ cfg SMTPConfig }

// NewSMTPMailer returns a Mailer for cfg.
func NewSMTPMailer(cfg SMTPConfig) (*SMTPMailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultSMTPPort
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultSMTPTimeout
	}
	if cfg.TLS == "" {
		cfg.TLS = SMTPTLSMandatory
	}
	return &SMTPMailer{cfg: cfg}, nil
}

// Send sends e.
func (m *SMTPMailer) Send(ctx context.Context, e Email) error {
	msg := gomail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return fmt.Errorf("smtp from: %w", err)
	}
	if err := msg.To(e.To); err != nil {
		return errors.New("smtp: invalid recipient address")
	}
	msg.Subject(e.Subject)
	msg.SetDate()
	if e.MessageID != "" {
		msg.SetMessageIDWithValue(e.MessageID)
	} else {
		msg.SetMessageID()
	}
	if e.Unsubscribe != "" {
		msg.SetGenHeader(gomail.HeaderListUnsubscribe, "<"+e.Unsubscribe+">")
		msg.SetGenHeader(gomail.HeaderListUnsubscribePost, "List-Unsubscribe=One-Click")
	}
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	if e.Language != "" {
		msg.SetGenHeader("Content-Language", e.Language)
	}
	msg.SetBodyString(gomail.TypeTextPlain, e.Text)

	policy := gomail.TLSMandatory
	switch m.cfg.TLS {
	case SMTPTLSOpportunistic:
		policy = gomail.TLSOpportunistic
	case SMTPTLSNone:
		policy = gomail.NoTLS
	}
	opts := []gomail.Option{gomail.WithPort(m.cfg.Port), gomail.WithTLSPolicy(policy), gomail.WithTimeout(m.cfg.Timeout)}
	if m.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password))
	}
	c, err := gomail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	return nil
}
