/*
 * The host terminal behind the serial console (conterm.h).
 */
#include "runtime/dev/conterm.h"

#include <unistd.h>

bool conterm_raw(struct conterm *t, int fd)
{
	t->fd = -1;
	t->active = false;
	if (fd < 0 || !isatty(fd))
		return true;
	if (tcgetattr(fd, &t->saved) != 0)
		return false;
	struct termios raw = t->saved;
	/* input: bytes as typed (CR stays CR, no flow control, no 8th-bit
	 * strip); no echo, line editing or signals from the keyboard; output
	 * post-processing stays (the guest's \n still starts a line) */
	raw.c_iflag &=
	    ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &raw) != 0)
		return false;
	t->fd = fd;
	t->active = true;
	return true;
}

void conterm_restore(struct conterm *t)
{
	if (!t->active)
		return;
	tcsetattr(t->fd, TCSANOW, &t->saved);
	t->active = false;
}
