/*
 * concur — the command-line tool: dispatches to the subcommands listed in
 * commands.def.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "concur.h"

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
#define CONCUR_COMMAND(name, summary) {#name, summary, cmd_##name},
#include "commands.def"
#undef CONCUR_COMMAND
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fputs("usage: concur COMMAND [OPTIONS]\n"
          "       concur --help | --version\n"
          "\n"
          "Python's concurrency model for C, measured on this machine.\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nRun 'concur COMMAND --help' for the options of a command.\n", f);
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* `concur help COMMAND` is `concur COMMAND --help`, as git does it. */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return TOOL_EXIT_OK;
    }
    const command *cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "concur: unknown command '%s'\n", argv[1]);
        return TOOL_EXIT_USAGE;
    }
    char help_flag[] = "--help";
    char *sub_argv[] = {argv[1], help_flag, NULL};
    return cmd->run(2, sub_argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
        return help(1, argv + 1);
    if (strcmp(arg, "help") == 0)
        return help(argc - 1, argv + 1);
    if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
        printf("concur %d.%d.%d\n", CONCUR_VERSION_MAJOR,
               CONCUR_VERSION_MINOR, CONCUR_VERSION_PATCH);
        return TOOL_EXIT_OK;
    }
    if (arg[0] == '-') {
        fprintf(stderr, "concur: unknown option '%s'\n"
                        "Try 'concur --help'.\n", arg);
        return TOOL_EXIT_USAGE;
    }
    const command *cmd = find_command(arg);
    if (!cmd) {
        fprintf(stderr, "concur: unknown command '%s'\n"
                        "Try 'concur --help'.\n", arg);
        return TOOL_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
