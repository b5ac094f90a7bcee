"""An MkDocs hook: the zoo's model cards (``zoo/*.md`` with their sample grids)
and the README's zoo table become pages of the site, so the site shows what
``keras_pixel.zoo.cards`` renders, from the files it writes, without copies."""

from pathlib import Path

from mkdocs.structure.files import File

TABLE_START = "<!-- zoo-table:"
TABLE_END = "<!-- /zoo-table -->"


def on_files(files, config):
    root = Path(config.config_file_path).parent
    for path in sorted((root / "zoo").glob("*.md")) + sorted((root / "zoo").glob("*.png")):
        files.append(
            File(
                f"zoo/{path.name}",
                src_dir=str(root),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    readme = (root / "README.md").read_text(encoding="utf-8")
    start = readme.index(TABLE_START)
    table = readme[readme.index("\n", start) + 1 : readme.index(TABLE_END)]
    content = (
        "# Model zoo\n\n"
        "Every entry of `keras_pixel.zoo` (`keras-pixel list`), with its card: "
        "architecture, recipe, the training run and the test figures we measured, "
        "and a grid of samples.\n\n" + table.replace("](zoo/", "](")
    )
    files.append(File.generated(config, "zoo/index.md", content=content))
    return files
