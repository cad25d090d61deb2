/*
 * pause: the process that holds a Pod's namespaces, as Kubernetes' own pause container does
 * (kubernetes/build/pause/linux/pause.c): it sleeps until SIGINT or SIGTERM and reaps the children
 * it inherits as PID 1. Built static (gcc -static) by test/node/build.sh, so its image is this one file.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signal) { _exit(signal == SIGINT || signal == SIGTERM ? 0 : 1); }

static void reap(int signal) {
  (void)signal;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction action = {0};
  action.sa_handler = stop;
  if (sigaction(SIGINT, &action, NULL) < 0 || sigaction(SIGTERM, &action, NULL) < 0) return 1;
  action.sa_handler = reap;
  action.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGCHLD, &action, NULL) < 0) return 2;
  for (;;) pause();
}
