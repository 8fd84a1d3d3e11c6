"""Double of modules/options.py (v1.10.1): OptionInfo, options_section, the Options store and the setting
categories (``categories.register_category``; ``Options.reorder`` groups sections by category as the
Settings page is built; ``dumpjson``'s ``_categories`` gives the headings the page shows)."""

from __future__ import annotations

import json
from dataclasses import dataclass


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None,
                 section=None, refresh=None, comment_before="", comment_after="", infotext=None,
                 restrict_api=False, category_id=None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.category_id = category_id
        self.refresh = refresh
        self.do_not_save = False
        self.comment_before = comment_before
        self.comment_after = comment_after
        self.infotext = infotext
        self.restrict_api = restrict_api

    def info(self, info):
        self.comment_after += f"<span class='info'>({info})</span>"
        return self

    def needs_reload_ui(self):
        self.comment_after += " <span class='info'>(requires Reload UI)</span>"
        return self

    def needs_restart(self):
        self.comment_after += " <span class='info'>(requires restart)</span>"
        return self


def options_section(section_identifier, options_dict):
    for value in options_dict.values():
        if len(section_identifier) == 2:
            value.section = section_identifier
        elif len(section_identifier) == 3:
            value.section = section_identifier[0:2]
            value.category_id = section_identifier[2]
    return options_dict


class Options:
    """Holds option values; unknown names raise AttributeError like the host."""

    def __init__(self, data_labels: dict[str, OptionInfo]):
        object.__setattr__(self, "data_labels", data_labels)
        object.__setattr__(self, "data", {k: v.default for k, v in data_labels.items()})

    def __setattr__(self, key, value):
        if key in self.data or key in self.data_labels:
            self.data[key] = value
            return
        object.__setattr__(self, key, value)

    def __getattr__(self, item):
        data = object.__getattribute__(self, "data")
        if item in data:
            return data[item]
        labels = object.__getattribute__(self, "data_labels")
        if item in labels:
            return labels[item].default
        raise AttributeError(item)

    def set(self, key, value, is_api=False, run_callbacks=True):
        """As the host's: ``restrict_api`` options cannot be set over the API; an ``onchange`` that raises
        is reported and the old value comes back."""
        old = self.data.get(key, None)
        if old == value:
            return False
        option = self.data_labels[key]
        if option.do_not_save:
            return False
        if is_api and option.restrict_api:
            return False
        self.data[key] = value
        if run_callbacks and option.onchange is not None:
            try:
                option.onchange()
            except Exception as e:
                import sys

                print(f"changing setting {key} to {value}: {type(e).__name__}: {e}", file=sys.stderr)
                self.data[key] = old
                return False
        return True

    def get_default(self, key):
        info = self.data_labels.get(key)
        return None if info is None else info.default

    def add_option(self, key, info):
        self.data_labels[key] = info
        if key not in self.data and not info.do_not_save:
            self.data[key] = info.default

    def onchange(self, key, func, call=True):
        self.data_labels[key].onchange = func
        if call:
            func()

    def dumpjson(self):
        """The values, and ``_categories``: [first section label, category label] per heading."""
        d = {k: self.data.get(k, v.default) for k, v in self.data_labels.items()}
        item_categories = {}
        for item in self.data_labels.values():
            if item.section[0] is None:
                continue
            category = categories.mapping.get(item.category_id)
            category = "Uncategorized" if category is None else category.label
            if category not in item_categories:
                item_categories[category] = item.section[1]
        d["_categories"] = [[v, k] for k, v in item_categories.items()] + [["Defaults", "Other"]]
        return json.dumps(d)

    def reorder(self):
        """Sections together, by category in registration order (uncategorized last), then by section label.

        A section's category is the one its first option names."""
        section_categories = {}
        for item in self.data_labels.values():
            section_categories.setdefault(item.section, item.category_id)
        for item in self.data_labels.values():
            item.category_id = section_categories.get(item.section)
        category_ids = {category_id: n for n, category_id in enumerate(categories.mapping)}

        def sort_key(pair):
            item = pair[1]
            return category_ids.get(item.category_id, len(category_ids)), item.section[1]

        object.__setattr__(self, "data_labels", dict(sorted(self.data_labels.items(), key=sort_key)))


@dataclass
class OptionsCategory:
    id: str
    label: str


class OptionsCategories:
    def __init__(self):
        self.mapping = {}

    def register_category(self, category_id, label):
        if category_id in self.mapping:
            return category_id
        self.mapping[category_id] = OptionsCategory(category_id, label)


categories = OptionsCategories()
