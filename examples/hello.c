/* A CGI program in C: one write of header and body. */
#include <unistd.h>

int main(void)
{
	static const char msg[] = "Content-Type: text/plain\r\n\r\nHello from C\n";
	return write(1, msg, sizeof(msg) - 1) == (ssize_t)(sizeof(msg) - 1) ? 0 : 1;
}
