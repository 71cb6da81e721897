"""The base class of every error the project raises on purpose.

A leaf module (it imports nothing from the project), so every module can subclass it and every
command can catch it without importing the modules that raise it.
"""


class GANSynthError(ValueError):
    """Input a person can fix: a bad file, setting, checkpoint or dataset, or a run that diverged.

    Every command prints it as one line on stderr (the message names the file or key) and exits
    with status 2. It is a ValueError because almost all of them are bad values.
    """
