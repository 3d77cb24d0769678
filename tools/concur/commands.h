/*
 * commands.h — what main.c dispatches to, and the exit statuses every
 * command shares.
 */
#ifndef CONCUR_TOOL_COMMANDS_H
#define CONCUR_TOOL_COMMANDS_H

/* Scripts tell a broken run from a mistyped command line by these. */
enum {
    TOOL_EXIT_OK = 0,
    TOOL_EXIT_FAILED = 1, /* the command ran and something in it failed */
    TOOL_EXIT_USAGE = 2   /* unknown command, option or argument */
};

#define CONCUR_COMMAND(name, summary) int cmd_##name(int argc, char **argv);
#include "commands.def"
#undef CONCUR_COMMAND

#endif /* CONCUR_TOOL_COMMANDS_H */
