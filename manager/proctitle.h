/* Process titles ("cpm: master", "cpm: worker 3") as ps(1) shows them. */
#ifndef CPM_PROCTITLE_H
#define CPM_PROCTITLE_H

/* Call once from main, before anything reads argv or environ. */
void proctitle_init(int argc, char **argv);
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
