"""`make docs`: the documentation site, built from the notebooks into `_docs/`.

With Quarto on PATH this is nbdev's own `nbdev_docs`. Without it (Quarto cannot be installed everywhere) it builds a
static HTML site that works offline:

- every notebook under `nbs/` (recursively, skipping names that start with `_` or `.`) goes through nbdev's own
  notebook processors (`#| hide` cells dropped, `show_doc` cards added for exported symbols, backticked names
  linked), except that exported cells stay visible, folded under "Exported source", and that a cell nbdev
  fails to execute for its `show_doc` output is reported instead of stopping the build;
- nbconvert renders each processed notebook to HTML (outputs and markdown images embedded as data URIs,
  LaTeX converted to MathML when `latex2mathml` is installed, else left for MathJax, loaded from its CDN
  after the page has loaded, so a page without network shows the TeX source);
- `index.ipynb` (the README) becomes `_docs/index.html`; every page has a sidebar listing every page in
  notebook order, with one section per subfolder (`tutorials/`); `_docs/api.html` lists, per module of
  `nsnquant`, its public functions and classes with their signatures and first docstring lines;
- the run-all notebook `99_paper.ipynb` has no outputs in git: its page shows, after its cells, the gallery
  `paper_figures/README.md` (every item's caption, provenance, table and figure; the PNGs copied beside the site),
  takes the gallery's title, and is where links to the gallery point;
- titles and descriptions (a notebook's `# Title` and `> description`) are inline Markdown (code, emphasis, links);
- the sidebar has a search box (offline: `assets/search-index.js`, every page's title, description, headings and
  text, written at build time, searched by `assets/site.js`) and, when settings.ini's `git_url` is set, a link to
  the repository (with no `git_url`, the `[source]` links of `show_doc` cards are dropped too); every page ends with
  links to the previous and the next page of the sidebar; every code block gets a copy button.

Page names follow nbdev (`01_nsn.ipynb` -> `nsn.html`), so links nbdev writes (`quantizer.html#nsnquantizer`)
resolve. Rebuilds are incremental: processed notebooks are cached in `.cache/docs/`, and a build whose inputs
have not changed since the last one does nothing (`--force` rebuilds).

    python tools/build_docs.py [--force] [--static] [--strict] [--workers N]
"""
from __future__ import annotations
import argparse, functools, hashlib, html, importlib, inspect, json, os, re, shutil, subprocess, sys, time, warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
NBS, DOCS, CACHE = ROOT/'nbs', ROOT/'_docs', ROOT/'.cache'/'docs'
LIB = 'nsnquant'
DIGEST = DOCS/'.build-digest'
SECTION_TITLES = {'': 'Library', 'tutorials': 'Tutorials'}
GALLERY = ROOT/'paper_figures'/'README.md'  # written by `nsnquant.report.write_gallery` from paper_figures/manifest.json
GALLERY_NB = NBS/'99_paper.ipynb'           # the run-all notebook that writes it (no outputs in git): its page shows the gallery
SEARCH_TEXT_CHARS = 20_000                  # text of a page kept in the search index (titles and headings are always kept)

def _settings() -> dict:
    "settings.ini's `[DEFAULT]` section: nbdev's configuration."
    from configparser import ConfigParser
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini', encoding='utf-8')
    return dict(cfg['DEFAULT'])

SETTINGS = _settings()
# doc_host + doc_baseurl: the address nbdev writes its doc links with; the builder rewrites them to relative links
DOC_URL = '/'.join(p for p in (SETTINGS.get('doc_host', '').rstrip('/'), SETTINGS.get('doc_baseurl', '').strip('/')) if p) + '/'
GIT_URL = SETTINGS.get('git_url', '').strip()  # the repository link of the sidebar, none when empty

def notebooks() -> list[Path]:
    "The notebooks that become pages: under nbs/, skipping names that start with `_` or `.`; top level first."
    nbs = [p for p in NBS.rglob('*.ipynb')
           if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts)]
    return sorted(nbs, key=lambda p: (len(p.relative_to(NBS).parts) > 1, str(p.relative_to(NBS))))

def _write(path:Path, text:str) -> None:
    "Write atomically: a reader (a test's server, a browser) never sees half a page."
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.write_text(text, encoding='utf-8'); os.replace(tmp, path)

def _sha(*parts) -> str:
    h = hashlib.sha256()
    for p in parts: h.update(p if isinstance(p, bytes) else str(p).encode()); h.update(b'\0')
    return h.hexdigest()

def _lib_digest() -> str:
    "What show_doc output depends on besides the notebook: the library, the settings, this script, the tools."
    import nbdev, nbconvert
    from importlib.metadata import version, PackageNotFoundError
    try: l2m = version('latex2mathml')
    except PackageNotFoundError: l2m = None
    files = sorted((ROOT/LIB).rglob('*.py')) + [ROOT/'settings.ini', Path(__file__)]
    return _sha(*[f.read_bytes() for f in files], nbdev.__version__, nbconvert.__version__, l2m)

# ---------------------------------------------------------------------------------------------- processing
# Runs in worker processes: nbdev's processors execute the exported and import cells to render `show_doc`.

def _procs():
    from nbdev.processors import FilterDefaults, exec_show_docs, rm_export, mv_exports, Processor
    from nbdev.processors import _hide_dirs

    class exec_show_docs_tolerant(exec_show_docs):
        "nbdev's `exec_show_docs`, but a failing cell is recorded (and the build goes on) instead of raised."
        failures = []
        def begin(self):
            super().begin()
            if hasattr(self, 'k'): self.k.timeout = 120
        def __call__(self, cell):
            try: super().__call__(cell)
            except Exception as e:
                err = e.__cause__ or e
                first = (cell.source or '').strip().splitlines()[:1]
                self.failures.append(f"cell {cell.idx_} ({first[0][:60] if first else ''}...): {type(err).__name__}: {str(err)[:200]}")
                self.k.exc = None

    def keep_export(cell):
        "Instead of nbdev's `rm_export`: `hide`/`default_exp` cells lose their source; exported cells stay, folded."
        if not cell.directives_: return
        keys = cell.directives_.keys()
        if keys & {'hide', 'default_exp'}: del cell['source']
        elif keys & (_hide_dirs | {'exports'}):
            cell.metadata.setdefault('tags', [])
            if 'fold' not in cell.metadata.tags: cell.metadata.tags.append('fold')

    class mv_all_exports(Processor):
        "As nbdev's `mv_exports`, for every exported cell: the `show_doc` cards first, then the folded source."
        def begin(self):
            cells = self.nb.cells
            for cell in reversed([c for c in cells if c.cell_type == 'code' and 'fold' in c.metadata.get('tags', [])]):
                i = j = cell.idx_
                while j + 1 < len(cells) and getattr(cells[j + 1], 'has_sd', 0): j += 1
                if j > i: cells[i:j + 1] = cells[i + 1:j + 1] + [cells[i]]

    swap = {exec_show_docs: exec_show_docs_tolerant, rm_export: keep_export, mv_exports: mv_all_exports}
    procs = [swap.get(p, p) for p in FilterDefaults().procs()]
    return procs, exec_show_docs_tolerant

def _process(args) -> tuple[str, list, float]:
    "Process notebook `src` with nbdev's processors into `dst`; return (src, failures, seconds)."
    src, dst = map(Path, args)
    t = time.time()
    os.environ['IN_TEST'] = '1'  # as nbdev's own docs processing does
    from execnb.nbio import read_nb, write_nb
    from nbdev.process import NBProcessor
    procs, tolerant = _procs()
    tolerant.failures = []
    cwd, main = os.getcwd(), sys.modules['__main__']  # IPython's shell replaces __main__: restore it for the next task
    os.chdir(src.parent)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            nb = read_nb(src)
            NBProcessor(nb=nb, procs=procs).process()
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_nb(nb, dst)
    finally: os.chdir(cwd); sys.modules['__main__'] = main
    return str(src), list(tolerant.failures), time.time() - t

def process_all(nbs:list[Path], force:bool, pool) -> dict:
    "Processed copies of `nbs` in CACHE (reused when the notebook and the library are unchanged): {nb: path}."
    lib = _lib_digest()
    todo, out = [], {}
    for nb in nbs:
        rel = nb.relative_to(NBS)
        dst, key_p = CACHE/rel, (CACHE/rel).with_suffix('.key')
        key = _sha(nb.read_bytes(), lib)
        out[nb] = dst
        if force or not dst.exists() or not key_p.exists() or key_p.read_text() != key: todo.append((nb, dst, key_p, key))
    if todo:
        print(f"docs: processing {len(todo)} notebook(s) with nbdev's processors", flush=True)
        for (nb, dst, key_p, key), (src, failures, secs) in zip(todo, pool.map(_process, [(a, b) for a, b, _, _ in todo])):
            for f in failures:
                print(f"docs: warning: {nb.relative_to(ROOT)}: nbdev could not execute {f}\n"
                      f"      (nbdev_docs stops here: a cell that mixes imports with other code is executed for show_doc; split it)", flush=True)
            (CACHE/'failures').mkdir(parents=True, exist_ok=True)
            (CACHE/'failures'/(nb.relative_to(NBS).as_posix().replace('/', '__') + '.json')).write_text(json.dumps(failures))
            key_p.write_text(key)
            print(f"docs:   {nb.relative_to(NBS)} ({secs:.1f}s)", flush=True)
    return out

def failures() -> dict:
    "Cells nbdev could not execute in the last processing of each notebook."
    d = CACHE/'failures'
    return {p.stem.replace('__', '/'): json.loads(p.read_text()) for p in d.glob('*.json')} if d.exists() else {}

# ---------------------------------------------------------------------------------------------- rendering

def page_names(nbs:list[Path]) -> dict:
    "{notebook: page path relative to _docs}, nbdev's names, disambiguated: a module's notebook keeps the short name."
    from nbdev.doclinks import _nbpath2html
    want = {nb: _nbpath2html(nb.relative_to(NBS)) for nb in nbs}
    want = {nb: (Path('index.html') if nb == NBS/'index.ipynb' else p) for nb, p in want.items()}
    out = {}
    for nb, p in want.items():
        clash = [o for o, q in want.items() if q == p and o != nb]
        if clash:
            mine = f'default_exp {p.stem}' in nb.read_text(encoding='utf-8')
            if not mine:
                p = nb.relative_to(NBS).with_suffix('.html')
                print(f"docs: note: {nb.relative_to(ROOT)} and {clash[0].relative_to(ROOT)} both map to "
                      f"{want[nb]} in nbdev; this one becomes {p}", flush=True)
        out[nb] = p
    return out

_TEMPLATE = r"""{%- extends 'base.html.j2' -%}
{# as lab's, without running pygments' (already escaped) output through bleach: a third of the rendering time #}
{% block input %}
<div class="jp-CodeMirrorEditor jp-Editor jp-InputArea-editor" data-type="inline">
<div class="cm-editor cm-s-jupyter">
{{ cell.source | highlight_code(metadata=cell.metadata) }}
</div>
</div>
{%- endblock input %}
{% block input_group -%}
{%- if 'fold' in cell.metadata.get('tags', []) -%}
<details class="fold"><summary>Exported source</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{%- endblock input_group %}
"""

def _directives(src:str) -> tuple[dict, str]:
    "Quarto/nbdev `#| key: value` lines at the top of a code cell, and the source without them."
    d, lines = {}, src.splitlines()
    i = 0
    while i < len(lines) and (re.match(r'\s*#\s*\|', lines[i]) or not lines[i].strip()):
        m = re.match(r'\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*)', lines[i])
        if m: d[m.group(1).lower()] = m.group(2).strip().strip('"\'').lower()
        i += 1
    return d, '\n'.join(lines[i:])

def _mathml(tex:str, display:bool) -> str|None:
    try: from latex2mathml.converter import convert
    except ImportError: return None
    try: return convert(html.unescape(tex), display='block' if display else 'inline')
    except Exception: return None

@functools.lru_cache(maxsize=None)
def _renderer():
    "nbconvert's Markdown renderer, with math as MathML (no JavaScript needed), else as `\\( \\)` spans for MathJax."
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class Renderer(IPythonRenderer):
        def inline_math(self, body): return self._math(body, False)
        def block_math(self, body): return self._math(body, True)
        def latex_environment(self, name, body):
            return self._math(f'\\begin{{{name}}}{body}\\end{{{name}}}', True)
        def _math(self, tex, display):
            kind, t = 'display' if display else 'inline', html.escape(html.unescape(tex), quote=True)
            m = _mathml(tex, display)
            if m: return f'<span class="math {kind}" data-tex="{t}">{m}</span>'
            return f'<span class="math {kind}" data-tex="{t}">' + (f'\\[{t}\\]' if display else f'\\({t}\\)') + '</span>'
    return Renderer

def _markdown(source:str, path:Path|str='', embed_images:bool=True, escape:bool=False) -> str:
    "Markdown (a file of the repository, a title) as HTML, the way nbconvert renders a notebook's markdown cells."
    from nbconvert.filters.markdown_mistune import MarkdownWithMath
    r = _renderer()(escape=escape, embed_images=embed_images, path=str(path), anchor_link_text='#')
    return MarkdownWithMath(renderer=r).render(source)

@functools.lru_cache(maxsize=None)
def inline_md(text:str, links:bool=True) -> str:
    """A one-line Markdown string (a title, a description) as inline HTML: code spans, emphasis, links, math; raw HTML
    is escaped. `links=False` keeps the text of links only (for a title that is itself a link, as in the sidebar)."""
    h = re.sub(r'^\s*<p>(.*)</p>\s*$', r'\1', _markdown(text, escape=True), flags=re.S).strip()
    return h if links else re.sub(r'</?a\b[^>]*>', '', h)

def plain(text:str) -> str:
    "A one-line Markdown string as plain text (for `<title>` and the search index): the text of `inline_md`."
    return ' '.join(html.unescape(re.sub(r'<[^>]+>', '', inline_md(text, False))).split())

def _exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.exporters.html import contextfilter
    from nbconvert.filters.markdown_mistune import MarkdownWithMath
    from nbconvert.preprocessors import TagRemovePreprocessor
    Renderer = _renderer()

    class Exporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            "As HTMLExporter's, without its BeautifulSoup pass (alt texts, tabindex): the alt texts are added by a regex."
            from nbconvert.exporters.templateexporter import TemplateExporter
            from nbconvert.filters.highlight import Highlight2HTML
            from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
            lang = nb.metadata.get('language_info', {})
            self.register_filter('highlight_code', self.filters.get('highlight_code', Highlight2HTML(
                pygments_lexer=lang.get('pygments_lexer', lang.get('name', 'ipython3')), parent=self)))
            resources = self._init_resources(resources)
            self.register_filter('filter_data_type', WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            body, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            return re.sub(r'<img(?![^>]*\balt=)', '<img alt="No description has been provided for this image"', body), resources

        @contextfilter
        def markdown2html(self, context, source):
            cell = context.get('cell', {})
            r = Renderer(escape=False, attachments=cell.get('attachments', {}), embed_images=self.embed_images,
                         path=context.get('resources', {}).get('metadata', {}).get('path', ''),
                         anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links)
            return MarkdownWithMath(renderer=r).render(source)

    ex = Exporter(template_name='lab', extra_loaders=[DictLoader({'nsnquant_cells.html.j2': _TEMPLATE})],
                  template_file='nsnquant_cells.html.j2', exclude_input_prompt=True, exclude_output_prompt=True,
                  embed_images=True, anchor_link_text='#')
    ex.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={'remove_cell'}, remove_input_tags={'remove_input'},
                                                   remove_all_outputs_tags={'remove_output'}), enabled=True)
    return ex

def _frontmatter(nb) -> dict:
    "nbdev's frontmatter (title, description, ...) from the raw cell its processors write; the cell is removed."
    import yaml
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'raw' and c.source.strip().startswith('---'):
            try: fm = yaml.safe_load(c.source.strip().strip('-')) or {}
            except Exception: fm = {}
            del nb.cells[i]
            return fm
    return {}

def _prepare(nb) -> None:
    "Apply the cell directives Quarto would (echo, output, include, code-fold) and drop empty cells."
    keep = []
    for c in nb.cells:
        if 'source' not in c: continue  # nbdev removed it (hide, default_exp)
        if c.cell_type == 'code':
            d, c.source = _directives(c.source)
            tags = list(c.metadata.get('tags', []))
            if d.get('include') == 'false': continue
            if d.get('echo') == 'false': tags.append('remove_input')
            if d.get('output') == 'false': tags.append('remove_output')
            if d.get('code-fold') in ('true', 'show') and 'fold' not in tags: tags.append('fold')
            if re.match(r'show_doc\(', c.source.strip()): tags.append('showdoc')
            if not c.source.strip() and not c.get('outputs'): continue
            if tags: c.metadata['tags'] = tags
        elif c.cell_type == 'markdown' and not c.source.strip(): continue
        elif c.cell_type == 'markdown' and c.source.strip().startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
        keep.append(c)
    nb.cells = keep
    for c in nb.cells:  # pandoc link attributes in show_doc markdown: `[source](url){target="_blank" ...}`
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md is not None:
                md = ''.join(md) if isinstance(md, list) else md
                md = re.sub(r'(\]\([^)]*\))\{[^}]*\}', r'\1', md)
                if not GIT_URL: md = re.sub(r'\[source\]\([^)]*\)\s*', '', md)  # no repository: no links into it
                o['data']['text/markdown'] = md

def _pandoc_id(text:str) -> str:
    "Pandoc's auto identifier (what Quarto uses, and nbdev's doc links expect)."
    s = re.sub(r'<[^>]+>', '', text); s = html.unescape(s)
    s = re.sub(r'[^\w\s.-]', '', s, flags=re.UNICODE).strip().lower()
    s = re.sub(r'\s+', '-', s)
    s = re.sub(r'^[^a-z]+', '', s)
    return s or 'section'

def _fix_headings(body:str) -> tuple[str, list]:
    "Heading ids the way Quarto makes them; returns the body and the h2 table of contents [(id, text)]."
    seen, toc = {}, []
    def sub(m):
        lvl, inner = m.group(1), m.group(3)
        text = re.sub(r'<a class="anchor-link".*?</a>', '', inner, flags=re.S)
        i = _pandoc_id(text)
        if i in seen: seen[i] += 1; i = f'{i}-{seen[i]}'
        else: seen[i] = 0
        if lvl == '2': toc.append((i, re.sub(r'<[^>]+>', '', text).strip()))
        inner = re.sub(r'<a class="anchor-link" href="#[^"]*">', f'<a class="anchor-link" href="#{i}">', inner)
        return f'<h{lvl} id="{i}">{inner}</h{lvl}>'
    return re.sub(r'<h([1-6]) id="([^"]*)">(.*?)</h\1>', sub, body, flags=re.S), toc

class Site:
    "Pages, their names and titles, the link rewriting between them, and what every page shares (sidebar, search, pager)."
    def __init__(self, nbs:list[Path]):
        self.nbs, self.names = nbs, page_names(nbs)
        self.by_src = {nb.resolve(): p for nb, p in self.names.items()}
        self.titles, self.copied, self.search = {}, set(), []
        self.gallery = self.names.get(GALLERY_NB) if GALLERY.is_file() else None  # the page that shows the gallery

    def order(self) -> list[tuple[Path, str]]:
        "(page, sidebar title) of every page in the sidebar, in its order: home, the notebooks, the API reference."
        pages = [(Path('index.html'), 'Home')]
        pages += [(self.names[nb], self.titles.get(nb, nb.stem)) for nb in self.nbs if nb != NBS/'index.ipynb']
        return pages + [(Path('api.html'), 'API reference')]

    def rel(self, target:str, page:Path) -> str:
        "`target` (a path relative to _docs, maybe with #fragment) relative to `page`'s folder."
        path, _, frag = target.partition('#')
        r = os.path.relpath(DOCS/path, (DOCS/page).parent) if path else ''
        return r.replace(os.sep, '/') + (f'#{frag}' if frag else '')

    def link(self, url:str, page:Path, src_dir:Path) -> str|None:
        "The site-relative form of `url` found on `page` (from a notebook in `src_dir`), or None to leave it."
        if url.startswith(DOC_URL): return self.rel(url[len(DOC_URL):], page)
        if re.match(r'^([a-z][a-z0-9+.-]*:|#|//)', url, re.I) or not url: return None
        path, _, frag = url.partition('#')
        for base in (src_dir, ROOT):
            p = (base/unquote(path)).resolve()
            if p.suffix == '.ipynb' and p in self.by_src:
                return self.rel(self.by_src[p].as_posix() + (f'#{frag}' if frag else ''), page)
            if p == GALLERY.resolve() and self.gallery:  # paper_figures/README.md: the page that shows it
                return self.rel(self.gallery.as_posix() + (f'#{frag}' if frag else ''), page)
            if p.is_file() and ROOT in p.parents:  # a file of the repository: copied beside the site
                if p.suffix == '.md': return self.rel(self._md_page(p) + (f'#{frag}' if frag else ''), page)
                dst = Path('_files')/p.relative_to(ROOT)
                tmp = (DOCS/dst).with_name(f'.{dst.name}.{os.getpid()}.tmp')
                tmp.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, tmp); os.replace(tmp, DOCS/dst)
                return self.rel(dst.as_posix() + (f'#{frag}' if frag else ''), page)
        return None

    def _md_page(self, p:Path) -> str:
        "A Markdown file of the repository (e.g. a README) rendered as a page of the site."
        dst = (Path('_files')/p.relative_to(ROOT)).with_suffix('.html')
        if dst not in self.copied:
            self.copied.add(dst)
            body, toc = _fix_headings(_markdown(p.read_text(encoding='utf-8'), p.parent))
            body = self.rewrite(body, dst, p.parent)
            _write(DOCS/dst, self.shell(f'`{p.relative_to(ROOT).as_posix()}`', '', body, dst, toc))
        return dst.as_posix()

    def rewrite(self, body:str, page:Path, src_dir:Path) -> str:
        def sub(m):
            new = self.link(html.unescape(m.group(3)), page, src_dir)
            return m.group(0) if new is None else f'{m.group(1)}{m.group(2)}{html.escape(new, quote=True)}{m.group(2)}'
        return re.sub(r'(\b(?:href|src)=)(["\'])(.*?)\2', sub, body)

    def nav(self, page:Path) -> str:
        "The sidebar: home, then one section per folder of nbs/ in notebook order, then the API reference."
        items, section = [], None
        def li(target, title, num=''):
            cls = ' class="active"' if Path(target) == page else ''
            num = f'<span class="nav-num">{num}</span>' if num else ''
            return f'<li{cls}><a href="{self.rel(target, page)}">{num}{inline_md(title, links=False)}</a></li>'
        items.append(f'<ul>{li("index.html", "Home")}</ul>')
        for nb in self.nbs:
            if nb == NBS/'index.ipynb': continue
            folder = nb.relative_to(NBS).parent.as_posix()
            folder = '' if folder == '.' else folder
            if folder != section:
                if section is not None: items.append('</ul>')
                section = folder
                items.append(f'<p class="nav-section">{html.escape(SECTION_TITLES.get(folder, folder.replace("_", " ").title()))}</p><ul>')
            num = re.match(r'^(\d+[a-z]?)_', nb.name)                      # 04b: the letter keeps inserted notebooks apart
            items.append(li(self.names[nb].as_posix(), self.titles.get(nb, nb.stem), num.group(1) if num else ''))
        if section is not None: items.append('</ul>')
        items.append(f'<p class="nav-section">Reference</p><ul>{li("api.html", "API reference")}</ul>')
        return '\n'.join(items)

    def pager(self, page:Path) -> str:
        "Links to the previous and the next page of the sidebar, for the bottom of `page` (none for a page not in it)."
        order = self.order()
        i = next((k for k, (p, _) in enumerate(order) if p == page), None)
        if i is None: return ''
        def a(k, rel, label):
            if not 0 <= k < len(order): return '<span></span>'
            p, t = order[k]
            return (f'<a class="{rel}" rel="{rel}" href="{self.rel(p.as_posix(), page)}">'
                    f'<span class="dir">{label}</span><span class="t">{inline_md(t, links=False)}</span></a>')
        return f'<nav class="pager" aria-label="Previous and next page">{a(i - 1, "prev", "« Previous")}{a(i + 1, "next", "Next »")}</nav>'

    def index(self, title:str, description:str, body:str, page:Path) -> None:
        "Record `page` for the search: its title, description, headings (and API entries) with their ids, and its text."
        heads = [(i, _strip_tags(re.sub(r'<a class="anchor-link".*?</a>', '', t, flags=re.S)))
                 for i, t in re.findall(r'<h[2-4] id="([^"]+)"[^>]*>(.*?)</h[2-4]>', body, flags=re.S)]
        heads += [(i, i.split('.', 2)[-1]) for i in re.findall(r'<div class="api-item" id="([^"]+)"', body)]
        text = re.sub(r'<math\b.*?</math>', lambda m: re.sub(r'<[^>]+>|\s', '', m.group(0)), body, flags=re.S)  # MathML: its characters
        text = _strip_tags(re.sub(r'<(script|style|pre)\b.*?</\1>', ' ', text, flags=re.S))  # no code, no outputs
        self.search.append({'url': page.as_posix(), 'title': plain(title), 'description': plain(description),
                            'headings': [[i, t] for i, t in heads if t], 'text': text[:SEARCH_TEXT_CHARS]})

    def write_search_index(self) -> None:
        """`assets/search-index.js`: the search index as JSON, in a script that sets `window.NSNQUANT_SEARCH` (a script
        loads from a `file://` page, where a browser refuses `fetch`). Pages in sidebar order, then the others."""
        rank = {p.as_posix(): k for k, (p, _) in enumerate(self.order())}
        pages = sorted(self.search, key=lambda e: (rank.get(e['url'], len(rank)), e['url']))
        _write(DOCS/'assets'/'search-index.js', '// the search index of the site, written by tools/build_docs.py\n'
               'window.NSNQUANT_SEARCH = ' + json.dumps(pages, ensure_ascii=False, separators=(',', ':')) + ';\n')

    def shell(self, title:str, description:str, body:str, page:Path, toc:list, source:str|None=None) -> str:
        """A complete page: head (local stylesheet), sidebar (repository link, search box, pages), title block, body,
        previous/next links, on-this-page contents. `title` and `description` are one-line Markdown."""
        self.index(title, description, body, page)
        css = self.rel('assets/style.css', page); js = self.rel('assets/site.js', page)
        root = os.path.relpath(DOCS, (DOCS/page).parent).replace(os.sep, '/')
        root = '' if root == '.' else root + '/'
        toc_html = ''.join(f'<li><a href="#{i}">{html.escape(t)}</a></li>' for i, t in toc)
        toc_html = f'<nav class="toc"><p>On this page</p><ul>{toc_html}</ul></nav>' if len(toc) > 1 else ''
        src = f'<p class="source">Source: <code>{html.escape(source)}</code></p>' if source else ''
        desc = f'<p class="description">{inline_md(description)}</p>' if description else ''
        repo = (f'<a class="repo-link" href="{html.escape(GIT_URL, quote=True)}" title="{html.escape(GIT_URL, quote=True)}">'
                f'{"GitHub" if "github.com" in GIT_URL else "Source"} repository</a>') if GIT_URL else ''
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(plain(title))} – {LIB}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
<script defer src="{js}"></script>
</head>
<body data-root="{root}">
<aside class="sidebar"><a class="brand" href="{self.rel('index.html', page)}">{LIB}</a>{repo}
<div class="search" role="search"><input type="search" id="search-input" placeholder="Search the docs (/)" aria-label="Search the docs" autocomplete="off">
<ul class="search-results" id="search-results" hidden></ul></div>
<nav class="pages">
{self.nav(page)}
</nav></aside>
<div class="content">
<main>
<header class="title-block"><h1 class="title">{inline_md(title)}</h1>{desc}{src}</header>
{body}
{self.pager(page)}
</main>
{toc_html}
</div>
</body>
</html>
"""

def _strip_tags(h:str) -> str:
    "HTML as one line of plain text."
    return ' '.join(html.unescape(re.sub(r'<[^>]+>', ' ', h)).split())

def gallery_title() -> str|None:
    "The title of the gallery (its `# ` line), which the page that shows it takes."
    if not GALLERY.is_file(): return None
    m = re.search(r'^#\s+(.+)$', GALLERY.read_text(encoding='utf-8'), flags=re.M)
    return m.group(1).strip() if m else None

def gallery_html(site:Site, page:Path) -> str:
    """paper_figures/README.md as HTML for `page`, without its title: every item's caption, provenance, table and figure
    (the PNGs copied beside the site, not embedded: the page stays small)."""
    md = re.sub(r'^#\s+.+\n', '', GALLERY.read_text(encoding='utf-8'), count=1, flags=re.M)
    body = site.rewrite(_markdown(md, GALLERY.parent, embed_images=False), page, GALLERY.parent)
    return f'<section class="gallery" id="gallery">\n{body}\n</section>'

def render_notebook(site:Site, nb_path:Path, proc:Path, exporter) -> None:
    import nbformat
    nb = nbformat.read(proc, as_version=4)
    fm = _frontmatter(nb)
    _prepare(nb)
    page = site.names[nb_path]
    body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'path': str(nb_path.parent), 'name': nb_path.stem}})
    title = str(site.titles.get(nb_path) or fm.get('title') or nb_path.stem)
    m = re.match(r'\s*<h1 id="[^"]*">(.*?)</h1>', body, flags=re.S)
    if m and _strip_tags(re.sub(r'<a class="anchor-link".*?</a>', '', m.group(1), flags=re.S)) == plain(title):
        body = body[m.end():]  # the title again, as the first heading
    body = site.rewrite(body, page, nb_path.parent)
    if page == site.gallery:  # the run-all notebook has no outputs in git: what it made follows its cells
        body += gallery_html(site, page)
    body, toc = _fix_headings(body)
    src = None if nb_path == NBS/'index.ipynb' else str(nb_path.relative_to(ROOT))
    _write(DOCS/page, site.shell(title, str(fm.get('description') or ''), body, page, toc, src))

def _title(proc:Path) -> str|None:
    "The page title nbdev puts in the frontmatter (from the notebook's `# Title` cell)."
    import yaml
    nb = json.loads(proc.read_text(encoding='utf-8'))
    for c in nb['cells'][:3]:
        s = ''.join(c['source'])
        if c['cell_type'] == 'raw' and s.strip().startswith('---'):
            try: return (yaml.safe_load(s.strip().strip('-')) or {}).get('title')
            except Exception: return None
        if c['cell_type'] == 'markdown' and (m := re.match(r'#\s+(.+)', s.strip())): return m.group(1).strip()
    return None

# ---------------------------------------------------------------------------------------------- API reference

def _modules() -> list[str]:
    return sorted(f'{LIB}.{p.stem}' for p in (ROOT/LIB).glob('*.py') if not p.stem.startswith('_'))

def _first_line(obj) -> str:
    d = inspect.getdoc(obj) or ''
    return d.strip().split('\n\n')[0].replace('\n', ' ') if d else ''

def _sig(obj) -> str:
    "The signature as written in the source (string annotations unquoted), one line, or one parameter a line when long."
    try: s = inspect.signature(obj)
    except (TypeError, ValueError): return '(...)'
    ann = lambda a: a if isinstance(a, str) else inspect.formatannotation(a)
    params, prev = [], None
    for p in s.parameters.values():
        if p.kind == p.KEYWORD_ONLY and prev not in (p.KEYWORD_ONLY, p.VAR_POSITIONAL): params.append('*')
        txt = ('*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else '') + p.name
        if p.annotation is not p.empty: txt += f':{ann(p.annotation)}'
        if p.default is not p.empty: txt += ('=' if p.annotation is p.empty else ' = ') + repr(p.default)
        params.append(txt); prev = p.kind
    if params and params[0] in ('self', 'cls') and not inspect.isclass(obj): params = params[1:]
    ret = '' if s.return_annotation is s.empty or inspect.isclass(obj) else f' -> {ann(s.return_annotation)}'
    one = f"({', '.join(params)}){ret}"
    return one if len(one) < 90 else '(\n    ' + ',\n    '.join(params) + f'\n){ret}'

def _doc_html(text:str) -> str:
    "A docstring line as HTML, with `backticks` as code."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(text))

def api_page(site:Site) -> None:
    "`_docs/api.html`: per module, its public functions and classes (signature, first docstring line), linked to their notebook."
    sys.path.insert(0, str(ROOT))
    try: idx = importlib.import_module(f'{LIB}._modidx').d['syms']
    except Exception: idx = {}
    page, mod_nb = Path('api.html'), {}
    for nb, p in site.names.items():
        if m := re.search(r'#\s*\|\s*default_exp\s+(\S+)', nb.read_text(encoding='utf-8')): mod_nb[f'{LIB}.{m.group(1)}'] = p
    parts, toc = [], []
    def doc_link(mod, qual):
        ref = idx.get(mod, {}).get(f'{mod}.{qual}')
        return site.rel(ref[0], page) if ref else None
    for mod in _modules():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore'); m = importlib.import_module(mod)
        except Exception as e:
            parts.append(f'<section class="api-module"><h2 id="{mod}">{mod}</h2><p class="error">could not import: {html.escape(repr(e))}</p></section>')
            continue
        names = list(getattr(m, '__all__', [n for n in dir(m) if not n.startswith('_')]))
        nbp = mod_nb.get(mod)
        nblink = f' <a class="nb-link" href="{site.rel(nbp.as_posix(), page)}">notebook: {inline_md(site.titles.get(next(k for k, v in site.names.items() if v == nbp), nbp.stem), links=False)}</a>' if nbp else ''
        toc.append((mod, mod))
        rows = []
        for n in names:
            obj = getattr(m, n, None)
            if obj is None: continue
            link = doc_link(mod, n)
            name_html = f'<a href="{link}">{n}</a>' if link else n
            if inspect.isclass(obj):
                methods = []
                for mn, mo in sorted(vars(obj).items()):
                    f = mo.fget if isinstance(mo, property) else getattr(mo, '__func__', mo)
                    if mn.startswith('_') or not callable(f) or getattr(f, '__module__', None) != mod: continue
                    ml = doc_link(mod, f'{n}.{mn}')
                    mname = f'<a href="{ml}">.{mn}</a>' if ml else f'.{mn}'
                    sig = '' if isinstance(mo, property) else _sig(f)
                    methods.append(f'<li><code class="sig">{mname}{html.escape(sig)}</code> <span class="doc">{_doc_html(_first_line(f))}</span></li>')
                meth = f'<ul class="methods">{"".join(methods)}</ul>' if methods else ''
                rows.append(f'<div class="api-item" id="{mod}.{n}"><p><span class="kind">class</span> <code class="sig">{name_html}{html.escape(_sig(obj))}</code></p>'
                            f'<p class="doc">{_doc_html(_first_line(obj))}</p>{meth}</div>')
            elif callable(obj):
                rows.append(f'<div class="api-item" id="{mod}.{n}"><p><span class="kind">def</span> <code class="sig">{name_html}{html.escape(_sig(obj))}</code></p>'
                            f'<p class="doc">{_doc_html(_first_line(obj))}</p></div>')
            else:
                r = repr(obj); r = r if len(r) < 100 else r[:97] + '...'
                rows.append(f'<div class="api-item" id="{mod}.{n}"><p><span class="kind">const</span> <code class="sig">{name_html} = {html.escape(r)}</code></p></div>')
        parts.append(f'<section class="api-module"><h2 id="{mod}">{mod}</h2><p class="doc">{_doc_html(_first_line(m))}{nblink}</p>{"".join(rows)}</section>')
    body = '\n'.join(parts)
    _write(DOCS/page, site.shell('API reference', f'The public functions and classes of every module of {LIB}, with their signatures and first docstring lines.',
                                 body, page, toc))

def fix_anchors() -> int:
    """Links within the site to an anchor its page lacks (nbdev links every backticked name, documented or not:
    `quantizer.html#nsnquantizer.encode` where the card says `encode`, `cache.html#_row` for a private class) point
    to the closest anchor that exists: the method's name, else its class, else the top of the page. Returns how many."""
    pages = {p: p.read_text(encoding='utf-8') for p in DOCS.rglob('*.html')}
    ids = {p.resolve(): set(re.findall(r'\bid="([^"]+)"', t)) for p, t in pages.items()}
    n = 0
    for p, text in pages.items():
        def sub(m):
            nonlocal n
            path, frag = m.group(1), unquote(m.group(3))
            target = (p.parent/unquote(path)).resolve() if path else p.resolve()
            have = ids.get(target)
            if have is None or frag in have: return m.group(0)
            parts = frag.split('.')
            new = next((c for c in (parts[-1], parts[0]) if c in have), None)
            n += 1
            return f'href="{path}#{new}"' if new else f'href="{path or "#"}"'
        new_text = re.sub(r'href="(([^"#:]*\.html)?)#([^"]+)"', sub, text)
        if new_text != text: p.write_text(new_text, encoding='utf-8')
    return n

# ---------------------------------------------------------------------------------------------- assets

CSS = r"""
:root { --fg:#1f2328; --muted:#59636e; --accent:#1f6feb; --bg-code:#f6f8fa; --border:#d1d9e0; --side:#f7f7f9; }
* { box-sizing: border-box; }
html { font-size: 16px; }
body { margin:0; color:var(--fg); font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; line-height:1.55; }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
.sidebar { position:fixed; top:0; left:0; bottom:0; width:250px; overflow-y:auto; background:var(--side); border-right:1px solid var(--border); padding:1.2rem 1rem; }
.sidebar .brand { display:block; font-weight:700; font-size:1.25rem; color:var(--fg); margin-bottom:1rem; }
.sidebar ul { list-style:none; margin:0 0 .6rem 0; padding:0; }
.sidebar li { margin:0; }
.sidebar li a { display:block; padding:.2rem .5rem; border-radius:5px; color:var(--fg); font-size:.92rem; }
.sidebar li .nav-num { display:inline-block; width:2.1rem; font-size:.75rem; color:var(--muted); font-variant-numeric:tabular-nums; }
.sidebar li.active a { background:#e2ebf8; color:var(--accent); font-weight:600; }
.sidebar li a:hover { background:#eceff3; text-decoration:none; }
.nav-section { margin:.9rem 0 .3rem .5rem; font-size:.75rem; font-weight:700; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); }
.content { margin-left:250px; display:flex; align-items:flex-start; }
main { flex:1; min-width:0; max-width:960px; padding:1.5rem 2.5rem 4rem; }
.toc { position:sticky; top:0; width:220px; flex:none; padding:1.8rem 1rem; font-size:.85rem; max-height:100vh; overflow-y:auto; }
.toc p { font-weight:600; margin:.2rem 0 .4rem; } .toc ul { list-style:none; padding:0; margin:0; } .toc li { margin:.25rem 0; }
.toc a { color:var(--muted); }
@media (max-width: 1200px) { .toc { display:none; } }
@media (max-width: 800px) { .sidebar { position:static; width:auto; border-right:0; border-bottom:1px solid var(--border); } .content { margin-left:0; } main { padding:1rem; } }
.title-block { border-bottom:1px solid var(--border); margin-bottom:1.2rem; padding-bottom:.6rem; }
.title-block h1.title { margin:.2rem 0 .4rem; font-size:2.1rem; }
.title-block .description { color:var(--muted); font-size:1.1rem; margin:.2rem 0; }
.title-block .source { color:var(--muted); font-size:.8rem; margin:.3rem 0 0; }
h1, h2, h3, h4 { line-height:1.25; margin:1.6rem 0 .6rem; }
h2 { font-size:1.55rem; border-bottom:1px solid #eaeef2; padding-bottom:.25rem; } h3 { font-size:1.2rem; } h4 { font-size:1.05rem; }
a.anchor-link { visibility:hidden; margin-left:.35rem; font-size:.85em; color:var(--muted); }
h1:hover a.anchor-link, h2:hover a.anchor-link, h3:hover a.anchor-link, h4:hover a.anchor-link { visibility:visible; }
code, pre, kbd { font-family: ui-monospace, SFMono-Regular, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:.86rem; }
p code, li code, td code { background:var(--bg-code); padding:.1rem .3rem; border-radius:4px; }
pre { margin:0; white-space:pre; overflow-x:auto; }
table { border-collapse:collapse; margin:.8rem 0; font-size:.9rem; display:block; overflow-x:auto; }
th, td { border:1px solid var(--border); padding:.3rem .6rem; text-align:left; } th { background:var(--bg-code); }
blockquote { margin:.8rem 0; padding:.1rem 1rem; border-left:4px solid var(--border); color:var(--muted); }
img { max-width:100%; height:auto; }
.jp-Cell { margin:.7rem 0; }
.jp-InputPrompt, .jp-OutputPrompt, .jp-Collapser { display:none; }
.jp-InputArea-editor, .jp-RenderedMarkdown .highlight, .jp-MarkdownCell .highlight { background:var(--bg-code); border:1px solid #e4e8ec; border-radius:6px; }
.jp-InputArea-editor .highlight pre, .jp-RenderedMarkdown .highlight pre { padding:.6rem .8rem; }
.jp-OutputArea { margin-top:.3rem; }
.jp-OutputArea-output { overflow-x:auto; }
.jp-RenderedText pre, .jp-OutputArea-output > pre { padding:.35rem .8rem; border-left:3px solid #d0d7de; font-size:.82rem; line-height:1.45; }
.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"] pre { border-left-color:#e5a0a0; background:#fff6f6; }
.jp-RenderedImage img { display:block; margin:.3rem 0; }
details.fold { margin:.2rem 0; }
details.fold > summary { cursor:pointer; color:var(--muted); font-size:.85rem; margin:.2rem 0; }
.celltag_showdoc .jp-OutputArea-output { border:1px solid var(--border); border-left:4px solid var(--accent); border-radius:6px; padding:.1rem 1rem .5rem; margin:1rem 0 .4rem; background:#fcfdff; }
.celltag_showdoc hr { display:none; }
.celltag_showdoc h3, .celltag_showdoc h4 { margin-top:.6rem; font-family: ui-monospace, SFMono-Regular, "DejaVu Sans Mono", monospace; }
.celltag_showdoc a[href*="github.com"] { float:right; font-size:.8rem; margin-top:.8rem; }
.celltag_showdoc .highlight { background:var(--bg-code); border-radius:6px; }
.celltag_showdoc .highlight pre { padding:.5rem .8rem; }
.math.display { display:block; overflow-x:auto; margin:.6rem 0; text-align:center; }
math { font-family: "STIX Two Math", "Latin Modern Math", "DejaVu Math TeX Gyre", "Cambria Math", math; }
math[display="block"] { margin:.2rem 0; }
.api-module { margin-bottom:2rem; }
.api-item { border-left:3px solid var(--border); padding:.1rem .9rem; margin:.7rem 0; }
.api-item p { margin:.25rem 0; } .api-item .doc { color:var(--fg); }
.api-item code.sig { white-space:pre-wrap; background:none; padding:0; font-size:.86rem; }
.api-item .kind { display:inline-block; min-width:3.2rem; font-size:.75rem; color:#8250df; font-family: ui-monospace, monospace; }
.api-item ul.methods { list-style:none; padding-left:1rem; margin:.3rem 0; font-size:.9rem; }
.api-item ul.methods li { margin:.2rem 0; } .api-item ul.methods .doc { color:var(--muted); }
.nb-link { margin-left:.6rem; font-size:.85rem; }
.sidebar .repo-link { display:block; font-size:.85rem; color:var(--muted); margin:-.6rem 0 .8rem; }
.sidebar .repo-link::after { content:" \2197"; }
.search { margin:0 0 .8rem; }
.search input { width:100%; padding:.35rem .55rem; font:inherit; font-size:.9rem; border:1px solid var(--border); border-radius:6px; background:#fff; }
.search input:focus { outline:2px solid #b6d0f7; border-color:var(--accent); }
.search-results { list-style:none; margin:.3rem 0 0; padding:0; border:1px solid var(--border); border-radius:6px; background:#fff; max-height:60vh; overflow-y:auto; }
.search-results li a { display:block; padding:.35rem .55rem; border-bottom:1px solid #eef1f4; color:var(--fg); font-size:.85rem; }
.search-results li:last-child a { border-bottom:0; }
.search-results li a:hover, .search-results li a:focus, .search-results li.sel a { background:#e2ebf8; text-decoration:none; }
.search-results .r-title { display:block; font-weight:600; }
.search-results .r-sub { display:-webkit-box; -webkit-line-clamp:2; -webkit-box-orient:vertical; overflow:hidden; color:var(--muted); font-size:.78rem; }
.search-results .r-none { padding:.35rem .55rem; color:var(--muted); font-size:.85rem; }
.pager { display:flex; justify-content:space-between; gap:1rem; margin-top:3rem; padding-top:1rem; border-top:1px solid var(--border); }
.pager a { display:block; max-width:48%; padding:.5rem .8rem; border:1px solid var(--border); border-radius:6px; }
.pager a:hover { border-color:var(--accent); text-decoration:none; }
.pager a.next { margin-left:auto; text-align:right; }
.pager .dir { display:block; font-size:.75rem; color:var(--muted); }
.pager .t { font-weight:600; }
div.highlight { position:relative; }
.copy-btn { position:absolute; top:.3rem; right:.3rem; padding:.1rem .45rem; font:inherit; font-size:.72rem; color:var(--muted); background:#fff;
  border:1px solid var(--border); border-radius:4px; cursor:pointer; opacity:.55; }
div.highlight:hover .copy-btn, .copy-btn:focus { opacity:1; }
.copy-btn.copied { color:#1a7f37; border-color:#1a7f37; opacity:1; }
.gallery img { display:block; margin:.6rem 0 1.2rem; border:1px solid #eaeef2; }
"""

SITE_JS = r"""// Math is MathML in the page (the browser draws it, offline). After the page has loaded, MathJax is fetched from
// its CDN and, if it arrives, typesets the TeX source kept in data-tex; without network nothing changes.
window.addEventListener('load', function () {
  var spans = document.querySelectorAll('span.math[data-tex]');
  if (!spans.length) return;
  window.MathJax = { tex: { inlineMath: [['\\(', '\\)']], displayMath: [['\\[', '\\]']] },
    startup: { typeset: false, ready: function () {
      MathJax.startup.defaultReady();
      spans.forEach(function (s) {
        var tex = s.getAttribute('data-tex'), d = s.classList.contains('display');
        s.textContent = d ? '\\[' + tex + '\\]' : '\\(' + tex + '\\)';
      });
      MathJax.typesetPromise(Array.from(spans));
    } } };
  var js = document.createElement('script');
  js.src = 'https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js'; js.async = true;
  document.head.appendChild(js);
});

// Copy buttons: every code block (code cells, code in markdown and in show_doc cards; not outputs) gets a button that
// puts its text on the clipboard: with the Clipboard API where the page is a secure context (http://localhost, https),
// else (a file:// page, or the API refused) through a selected, invisible textarea and execCommand('copy').
function copyText(text) {
  function legacy() {
    return new Promise(function (resolve, reject) {
      var ta = document.createElement('textarea');
      ta.value = text; ta.setAttribute('readonly', '');
      ta.style.position = 'fixed'; ta.style.top = '0'; ta.style.opacity = '0';
      document.body.appendChild(ta); ta.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      if (ok) resolve(); else reject(new Error('copy refused'));
    });
  }
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text).catch(legacy);
  return legacy();
}

function addCopyButtons() {
  document.querySelectorAll('main div.highlight').forEach(function (block) {
    var pre = block.querySelector('pre');
    if (!pre || block.querySelector(':scope > .copy-btn')) return;
    var b = document.createElement('button');
    b.type = 'button'; b.className = 'copy-btn'; b.textContent = 'Copy'; b.setAttribute('aria-label', 'Copy the code');
    b.addEventListener('click', function () {
      copyText(pre.textContent.replace(/\n$/, '')).then(function () {
        b.textContent = 'Copied'; b.classList.add('copied');
      }, function () { b.textContent = 'Press Ctrl+C'; window.getSelection().selectAllChildren(pre); });
      setTimeout(function () { b.textContent = 'Copy'; b.classList.remove('copied'); }, 2000);
    });
    block.appendChild(b);
  });
}

// Search: the index (assets/search-index.js: every page's title, description, headings and text, written at build
// time) is loaded the first time the box is used, as a script (fetch() is refused on file:// pages). A page matches
// when it contains every word typed; a word in its title counts most, then in its description, in a heading (the
// result then links to that heading), in its text (each occurrence, up to 10).
function setupSearch() {
  var input = document.getElementById('search-input'), list = document.getElementById('search-results');
  if (!input || !list) return;
  var root = document.body.getAttribute('data-root') || '', loading = false;

  function load() {
    if (loading) return;
    loading = true;
    var js = document.createElement('script');
    js.src = root + 'assets/search-index.js';
    js.onload = run;
    document.head.appendChild(js);
  }
  function count(hay, t) {
    var n = 0, i = hay.indexOf(t);
    while (i >= 0 && n < 10) { n++; i = hay.indexOf(t, i + t.length); }
    return n;
  }
  function snippet(text, t) {
    var i = text.toLowerCase().indexOf(t);
    if (i < 0) return '';
    var a = i > 40 ? text.lastIndexOf(' ', i - 30) + 1 : 0, b = Math.min(text.length, i + t.length + 90);  // from a word
    return (a ? '… ' : '') + text.slice(a, b) + (b < text.length ? ' …' : '');
  }
  function rank(terms) {
    var out = [];
    window.NSNQUANT_SEARCH.forEach(function (p) {
      var title = p.title.toLowerCase(), desc = p.description.toLowerCase(), text = p.text.toLowerCase();
      var score = 0, all = true;
      terms.forEach(function (t) {
        var s = (title.indexOf(t) >= 0 ? 50 : 0) + (desc.indexOf(t) >= 0 ? 15 : 0) + count(text, t);
        if (p.headings.some(function (h) { return h[1].toLowerCase().indexOf(t) >= 0; })) s += 8;
        if (!s) all = false;
        score += s;
      });
      if (!all) return;
      var head = p.headings.find(function (h) {
        var x = h[1].toLowerCase();
        return terms.every(function (t) { return x.indexOf(t) >= 0; });
      });
      var inTitle = terms.every(function (t) { return title.indexOf(t) >= 0; });
      out.push({ page: p, score: score, head: inTitle ? null : head });
    });
    return out.sort(function (a, b) { return b.score - a.score; }).slice(0, 12);
  }
  function run() {
    var q = input.value.trim().toLowerCase(), terms = q.split(/\s+/).filter(Boolean);
    list.innerHTML = '';
    if (!terms.length) { list.hidden = true; return; }
    if (!window.NSNQUANT_SEARCH) { load(); return; }
    var hits = rank(terms);
    hits.forEach(function (r, k) {
      var li = document.createElement('li'), a = document.createElement('a');
      var t = document.createElement('span'), sub = document.createElement('span');
      a.href = root + r.page.url + (r.head ? '#' + r.head[0] : '');
      t.className = 'r-title'; t.textContent = r.page.title;
      sub.className = 'r-sub';
      sub.textContent = r.head ? '› ' + r.head[1] : (snippet(r.page.text, terms[0]) || r.page.description);
      a.appendChild(t); a.appendChild(sub); li.appendChild(a);
      if (k === 0) li.className = 'sel';
      list.appendChild(li);
    });
    if (!hits.length) list.innerHTML = '<li class="r-none">No page matches.</li>';
    list.hidden = false;
  }
  input.addEventListener('input', run);
  input.addEventListener('focus', load);
  input.addEventListener('keydown', function (e) {
    var first = list.querySelector('li a');
    if (e.key === 'Enter' && first) { e.preventDefault(); window.location.href = first.href; }
    if (e.key === 'ArrowDown' && first) { e.preventDefault(); first.focus(); }
    if (e.key === 'Escape') { input.value = ''; run(); }
  });
  list.addEventListener('keydown', function (e) {  // arrows move between the results, Escape goes back to the box
    var li = document.activeElement && document.activeElement.parentElement;
    if (!li || li.parentElement !== list) return;
    var to = e.key === 'ArrowDown' ? li.nextElementSibling : e.key === 'ArrowUp' ? li.previousElementSibling : null;
    if (to && to.querySelector('a')) { e.preventDefault(); to.querySelector('a').focus(); }
    else if (e.key === 'ArrowUp' || e.key === 'Escape') { e.preventDefault(); input.focus(); }
  });
  document.addEventListener('keydown', function (e) {  // '/' anywhere on the page goes to the search box
    var tag = (document.activeElement && document.activeElement.tagName) || '';
    if (e.key === '/' && !/^(INPUT|TEXTAREA|SELECT)$/.test(tag)) { e.preventDefault(); input.focus(); }
  });
}

// site.js is loaded with `defer`: the document has been parsed when it runs.
addCopyButtons();
setupSearch();
"""

def write_assets() -> None:
    from pygments.formatters import HtmlFormatter
    (DOCS/'assets').mkdir(parents=True, exist_ok=True)
    (DOCS/'assets'/'style.css').write_text(CSS + HtmlFormatter(style='default').get_style_defs('.highlight')
                                           + '\n.highlight { background: transparent; }\n', encoding='utf-8')
    (DOCS/'assets'/'site.js').write_text(SITE_JS, encoding='utf-8')
    (DOCS/'.nojekyll').write_text('')

# ---------------------------------------------------------------------------------------------- main

def inputs_digest(nbs:list[Path]) -> str:
    extra = sorted(p for p in (ROOT/'paper_figures').glob('*') if p.is_file()) if (ROOT/'paper_figures').exists() else []
    return _sha(_lib_digest(), *[(str(p.relative_to(ROOT)), p.read_bytes()) for p in nbs + extra])

def build_static(force:bool=False, workers:int=2, strict:bool=False) -> int:
    t0 = time.time()
    nbs = notebooks()
    digest = inputs_digest(nbs)
    if not force and DIGEST.exists() and DIGEST.read_text() == digest and (DOCS/'index.html').exists():
        print(f"docs: _docs/ is up to date ({len(nbs)} notebooks; --force rebuilds)"); return 0
    os.environ.setdefault('OMP_NUM_THREADS', '1')  # the workers run side by side
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context('spawn')) as pool:  # workers start only if needed
        procs = process_all(nbs, force, pool)
    t1 = time.time()
    if DOCS.exists(): shutil.rmtree(DOCS)
    DOCS.mkdir(parents=True)
    write_assets()
    site = Site(nbs)
    for nb in nbs: site.titles[nb] = _title(procs[nb]) or nb.stem
    if site.gallery: site.titles[GALLERY_NB] = gallery_title() or site.titles[GALLERY_NB]
    if dup := sorted({plain(t) for t in site.titles.values() if list(map(plain, site.titles.values())).count(plain(t)) > 1}):
        print(f"docs: warning: pages share a sidebar title: {dup} (retitle a notebook's `# Title` cell)", flush=True)
    exporter = _exporter()
    for nb in nbs: render_notebook(site, nb, procs[nb], exporter)
    api_page(site)
    site.write_search_index()
    (DOCS/'.pages.json').write_text(json.dumps({nb.relative_to(NBS).as_posix(): p.as_posix() for nb, p in site.names.items()}, indent=1))
    if n := fix_anchors(): print(f"docs: {n} link(s) to anchors that no page has now point to the closest one (nbdev links every backticked name)", flush=True)
    fails = {k: v for k, v in failures().items() if v and NBS/k in nbs}
    DIGEST.write_text(digest)
    print(f"docs: wrote {len(nbs) + 1} pages to {DOCS.relative_to(ROOT)}/ (processing {t1 - t0:.0f}s, rendering {time.time() - t1:.0f}s); "
          f"open {DOCS.relative_to(ROOT)}/index.html", flush=True)
    if fails:
        print(f"docs: {sum(map(len, fails.values()))} cell(s) in {', '.join(sorted(fails))} could not be executed for show_doc "
              f"(see the warnings above); nbdev_docs would fail on them", flush=True)
        if strict: DIGEST.unlink(); return 1
    return 0

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--force', action='store_true', help='rebuild everything, ignoring the caches')
    ap.add_argument('--static', action='store_true', help='build the static site even when quarto is installed')
    ap.add_argument('--strict', action='store_true', help='fail when a cell cannot be executed for show_doc')
    ap.add_argument('--workers', type=int, default=int(os.environ.get('NSNQUANT_DOCS_WORKERS', min(2, os.cpu_count() or 1))))
    a = ap.parse_args(argv)
    os.chdir(ROOT)
    if shutil.which('quarto') and not a.static:
        print('docs: quarto found: nbdev_docs', flush=True)
        return subprocess.run([str(Path(sys.executable).parent/'nbdev_docs')], cwd=ROOT).returncode
    print('docs: quarto not found: building the static HTML site', flush=True)
    return build_static(a.force, a.workers, a.strict)

if __name__ == '__main__': sys.exit(main())
