package postfixtest

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"signup/internal/waitfor"
)

// startPostgrey runs a private postgrey on the port main.cf's
// check_policy_service names, with its own database; it ends with the
// test, or with the test binary if that dies first.
func (s *Server) startPostgrey() error {
	if _, err := exec.LookPath("postgrey"); err != nil {
		return fmt.Errorf("postgrey is not installed (scripts/ensure-postfix.sh installs it): %w", err)
	}
	pg, err := user.Lookup("postgrey")
	if err != nil {
		return fmt.Errorf("no postgrey user: %w", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	db := filepath.Join(s.dir, "postgrey")
	if err := os.Mkdir(db, 0o755); err != nil {
		return err
	}
	// postgrey drops to its own user before it opens the database.
	if err := os.Chown(db, uid, gid); err != nil {
		return err
	}
	delay := int(math.Ceil(s.opts.Greylist.Seconds()))
	cmd := exec.Command("postgrey",
		"--inet=127.0.0.1:"+strconv.Itoa(s.greylistPort),
		"--delay="+strconv.Itoa(delay),
		"--dbdir="+db,
		"--pidfile="+filepath.Join(db, "postgrey.pid"),
		"--greylist-text=Greylisted by the test, try again in %s seconds",
	)
	log, err := os.Create(filepath.Join(s.dir, "log", "postgrey.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgrey: %w", err)
	}
	s.postgrey = cmd
	if err := waitfor.Wait(30*time.Second, func() error { return dial(s.greylistPort) }); err != nil {
		b, _ := os.ReadFile(log.Name())
		return fmt.Errorf("postgrey on 127.0.0.1:%d: %w\n%s", s.greylistPort, err, b)
	}
	return nil
}
