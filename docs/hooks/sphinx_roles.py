"""A griffe extension: the docstrings' Sphinx roles (``:func:`name```,
``:class:`~pkg.Name```, ...) become cross-reference links in the API pages.

The link is an optional autoref: it points at the object where the API pages
render it, and stays plain code where they do not (no broken link, no warning).
Unqualified names are looked up in the object's class, then its module.
"""

import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`(~?)([\w.]+)`")


def _identifier(obj, name):
    if name.startswith("keras_pixel"):
        return name
    scopes = [obj if obj.is_class else obj.parent, obj.module]
    for scope in scopes:
        if scope is not None and name.split(".")[0] in scope.members:
            return f"{scope.path}.{name}"
    return f"keras_pixel.{name}"


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj, **kwargs):
        if obj.docstring is None:
            return

        def link(match):
            tilde, name = match.groups()
            title = name.rsplit(".", 1)[-1] if tilde else name
            identifier = _identifier(obj, name)
            return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

        obj.docstring.value = ROLE.sub(link, obj.docstring.value)
