package postfixtest

import (
	"fmt"
	"strings"
)

// mainCF is the instance's main.cf: everything under dir, smtpd on
// 127.0.0.1 only, Maildir delivery for the test domain and an error
// transport for everything else, so nothing ever leaves the machine.
func mainCF(dir string, opts Options, uid, gid int, greylistPort int) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# A private Postfix instance for one test; see package postfixtest.")
	line("compatibility_level = 3.6")
	line("queue_directory = %s/queue", dir)
	line("data_directory = %s/data", dir)
	line("maillog_file = %s/log/maillog", dir)
	line("maillog_file_prefixes = %s/log", dir)
	line("myhostname = %s", Hostname)
	line("mydomain = %s", Hostname)
	line("mydestination =")
	line("inet_interfaces = loopback-only")
	line("inet_protocols = ipv4")
	// 127.0.0.1 is a stranger on the internet here, not a trusted client:
	// mynetworks holds a documentation address that nothing uses.
	line("mynetworks = 192.0.2.1/32")
	line("alias_maps =")
	line("alias_database =")
	line("biff = no")
	line("virtual_mailbox_domains = %s", opts.Domain)
	line("virtual_mailbox_base = %s/mail", dir)
	if opts.Mailboxes == nil {
		line("virtual_mailbox_maps = static:%s", maildirName)
	} else {
		line("virtual_mailbox_maps = texthash:%s/conf/mailboxes", dir)
	}
	line("virtual_uid_maps = static:%d", uid)
	line("virtual_gid_maps = static:%d", gid)
	line("default_transport = error:a test instance delivers nowhere else")
	line("relay_transport = error:a test instance delivers nowhere else")
	switch opts.TLS {
	case Snakeoil:
		line("smtpd_tls_cert_file = %s", snakeoilCert)
		line("smtpd_tls_key_file = %s", snakeoilKey)
	case TestCA:
		line("smtpd_tls_cert_file = %s/tls/server.pem", dir)
		line("smtpd_tls_key_file = %s/tls/server.key", dir)
	}
	if opts.TLS == NoTLS {
		line("smtpd_tls_security_level = none")
	} else {
		line("smtpd_tls_security_level = may")
		line("smtpd_tls_loglevel = 1")
		line("smtpd_tls_received_header = yes")
	}
	if opts.RejectNonFQDNHelo {
		line("smtpd_helo_required = yes")
		line("smtpd_helo_restrictions = reject_non_fqdn_helo_hostname")
	}
	line("smtpd_forbid_unauth_pipelining = yes")
	if opts.NoPipelining {
		line("smtpd_discard_ehlo_keywords = pipelining")
	}
	rcpt := []string{"reject_unlisted_recipient"}
	if greylistPort != 0 {
		rcpt = append(rcpt, fmt.Sprintf("check_policy_service inet:127.0.0.1:%d", greylistPort))
	}
	line("smtpd_recipient_restrictions = %s", strings.Join(rcpt, ", "))
	// A test's mail is delivered at once: no waits between queue scans
	// beyond Postfix's own defaults, and a short delivery retry.
	line("queue_run_delay = 1s")
	line("minimal_backoff_time = 1s")
	line("maximal_backoff_time = 2s")
	return b.String()
}

// masterCF lists the daemons the instance runs, smtpd on 127.0.0.1:port;
// none is chrooted (the instance has no chroot jail).
func masterCF(port int) string {
	return fmt.Sprintf(`# A private Postfix instance for one test; see package postfixtest.
127.0.0.1:%d inet n - n - - smtpd
pickup     unix  n  -  n  60    1  pickup
cleanup    unix  n  -  n  -     0  cleanup
qmgr       unix  n  -  n  300   1  qmgr
tlsmgr     unix  -  -  n  1000? 1  tlsmgr
rewrite    unix  -  -  n  -     -  trivial-rewrite
bounce     unix  -  -  n  -     0  bounce
defer      unix  -  -  n  -     0  bounce
trace      unix  -  -  n  -     0  bounce
verify     unix  -  -  n  -     1  verify
flush      unix  n  -  n  1000? 0  flush
proxymap   unix  -  -  n  -     -  proxymap
proxywrite unix  -  -  n  -     1  proxymap
smtp       unix  -  -  n  -     -  smtp
relay      unix  -  -  n  -     -  smtp
showq      unix  n  -  n  -     -  showq
error      unix  -  -  n  -     -  error
retry      unix  -  -  n  -     -  error
discard    unix  -  -  n  -     -  discard
local      unix  -  n  n  -     -  local
virtual    unix  -  n  n  -     -  virtual
anvil      unix  -  -  n  -     1  anvil
scache     unix  -  -  n  -     1  scache
postlog    unix-dgram n - n - 1 postlogd
`, port)
}

// mailboxesMap is the texthash table of known recipients: each is
// delivered to the one Maildir the instance reads.
func mailboxesMap(domain string, locals []string) string {
	var b strings.Builder
	for _, l := range locals {
		fmt.Fprintf(&b, "%s@%s %s\n", l, domain, maildirName)
	}
	return b.String()
}
