"""The documentation site in a real browser: `tools/build_docs.py --static` builds `_docs/` (or finds it up to date), a local
HTTP server serves it, and headless Chromium (through selenium and chromedriver) opens every page.

Checks, on every page (one browser, one load a page): HTTP 200, a title and a heading; every image has loaded
(`naturalWidth > 0`, which needs a browser); every relative link targets a file of the site, and every `#anchor` of a
link within the site exists on its page; no Markdown or LaTeX source left in the visible text outside code (`**`,
backticks, `](`, `# ` headings, `$...$`, `\\frac`...: a title or a cell that was not rendered); every code block has a
copy button; the previous/next links follow the sidebar. The site as a whole: the home page is the README and the
sidebar lists every notebook page under distinct titles; the search box finds a page; a copy button copies; the
paper page shows every figure and table of paper_figures/manifest.json; the repository link is settings.ini's
`git_url` (none when it is empty). Screenshots (home, a notebook page, the paper gallery, the search) go to
tests/_out/. Skipped, with the reason, when chromium, chromedriver or selenium is missing (Debian: `apt-get install
chromium chromium-driver`; pip: `selenium`).
"""
import configparser, functools, http.server, json, os, re, shutil, subprocess, sys, threading, urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlparse, unquote
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT/'_docs'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--window-size=1400,1000']

def _chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'):
        if p := shutil.which(name): return p

@pytest.fixture(scope='module')
def site():
    """Build the static site (incremental: a build with unchanged inputs does nothing), then serve `_docs/` on a free local port.
    `--static`: where Quarto is installed `make docs` builds nbdev's Quarto site instead; this test checks the static builder."""
    env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py'), '--static'], cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert (DOCS/'index.html').is_file(), r.stdout[-2000:]
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def handle(self):
            try: super().handle()
            except (BrokenPipeError, ConnectionResetError): pass  # the browser dropped a request it no longer needed
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(DOCS)))
    th = threading.Thread(target=srv.serve_forever, daemon=True); th.start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown(); srv.server_close()

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    chrome, driver_bin = _chromium(), shutil.which('chromedriver')
    if not chrome or not driver_bin:
        pytest.skip('chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)')
    try: from selenium import webdriver
    except ImportError: pytest.skip('selenium is not installed (pip install selenium)')
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for f in FLAGS + [f'--user-data-dir={tmp_path_factory.mktemp("chromium-profile")}']: opts.add_argument(f)
    d = webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()

def notebooks():
    "The notebooks that must have a page (the ones nbdev renders), relative to nbs/: known before the site is built."
    nbs = ROOT/'nbs'
    return sorted(p.relative_to(nbs).as_posix() for p in nbs.rglob('*.ipynb')
                  if not any(x.startswith(('_', '.')) for x in p.relative_to(nbs).parts))

def pages():
    "Every HTML page of the built site, relative to _docs/."
    return sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob('*.html'))

def page_of(nb:str) -> str:
    "The page built from notebook `nb` (nbdev's names: `01_nsn.ipynb` -> `nsn.html`), from the builder's record."
    names = json.loads((DOCS/'.pages.json').read_text())
    assert nb in names, f"no page was built for nbs/{nb}"
    return names[nb]

@functools.lru_cache(maxsize=None)
def _ids(page:Path) -> set:
    return set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding='utf-8')))

def _load(browser, url):
    browser.get(url)
    browser.execute_script("return document.readyState")
    return browser

def _wait(browser, cond, timeout=10):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, timeout).until(lambda d: cond(d))

def _settings() -> dict:
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini', encoding='utf-8')
    return dict(cfg['DEFAULT'])

# Markdown or LaTeX source in the text a reader sees (outside code, math and hidden elements) is a page, a title or a
# cell that was not rendered. Run in the page: returns [[what, text]] for each visible text node that has some.
# `**` counts where it opens a word (`**bold**`), not inside one: `cos**2` in a plain-text docstring is Python.
_RAW_SOURCE_JS = r"""
const pats = [['TeX $...$', /\$[^$\s][^$\n]*?\$/], ['TeX command', /\\(frac|mathrm|mathcal|mathbf|sqrt|cdot|sum|text|left|right)\b/],
              ['**bold', /(^|[\s(\[])\*\*[^\s*]/], ['backtick', /`/], ['link ](', /\]\(/], ['# heading', /(^|\n)\s*#{1,6}\s+\S/]];
const skip = 'pre, code, kbd, samp, script, style, textarea, math, .math, .highlight';
const out = [], w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = w.nextNode(); n; n = w.nextNode()) {
  const el = n.parentElement;
  if (!n.nodeValue.trim() || el.closest(skip) || !el.checkVisibility({visibilityProperty: true})) continue;
  for (const [what, re] of pats) if (re.test(n.nodeValue)) out.push([what, n.nodeValue.trim().slice(0, 120)]);
}
return out;
"""

def test_home_page_is_the_readme_and_lists_every_notebook(browser, site):
    nbs = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if not any(x.startswith(('_', '.')) for x in p.relative_to(ROOT/'nbs').parts))
    b = _load(browser, site)
    assert b.title.strip() and 'nsnquant' in b.title
    assert b.find_element('css selector', 'h1').text.strip()
    nav = [a.get_attribute('href') for a in b.find_elements('css selector', '.sidebar nav a')]
    assert len(nav) == len(nbs) + 1, f"the navigation lists {len(nav)} pages for {len(nbs)} notebooks + the API reference"
    titles = b.execute_script("return Array.from(document.querySelectorAll('.sidebar nav a')).map(a => "
                              "Array.from(a.childNodes).filter(n => !(n.classList && n.classList.contains('nav-num'))).map(n => n.textContent).join('').trim())")
    dup = sorted({t for t in titles if titles.count(t) > 1})
    assert not dup, f"sidebar entries share a title: {dup}"
    main_text = b.find_element('css selector', 'main').text
    assert 'make test' in main_text and 'make paper' in main_text  # the README's two commands
    tuts = [p for p in nbs if p.parent.name == 'tutorials']
    if tuts: assert 'tutorials' in b.find_element('css selector', '.sidebar').text.lower()

@pytest.mark.parametrize('nb', notebooks() + ['api'])
def test_page(browser, site, nb):
    "Every notebook's page (and the API reference) loads (HTTP 200, a title, a heading), its images render, its links and anchors resolve."
    check_page(site, browser, 'api.html' if nb == 'api' else page_of(nb))

def test_other_pages(browser, site):
    "Pages that are not notebooks (Markdown files of the repository that notebooks link to), checked the same way."
    done = set(json.loads((DOCS/'.pages.json').read_text()).values()) | {'api.html'}
    for page in pages():
        if page not in done: check_page(site, browser, page)

def check_page(site, browser, page):
    with urllib.request.urlopen(urljoin(site, page)) as r: assert r.status == 200
    b = _load(browser, urljoin(site, page))
    assert b.title.strip(), page
    assert b.find_element('css selector', 'h1').text.strip(), page
    broken = b.execute_script("return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                              ".map(i => (i.getAttribute('src') || '').slice(0, 80))")
    assert not broken, f"{page}: images that did not render: {broken}"
    hrefs = b.execute_script("return Array.from(document.querySelectorAll('a[href], link[href], script[src], img[src]'))"
                             ".map(e => e.getAttribute('href') || e.getAttribute('src'))")
    bad = []
    for h in hrefs:
        u = urlparse(h)
        if u.scheme or h.startswith('//'): continue
        target = (DOCS/page).parent/unquote(u.path) if u.path else DOCS/page
        target = target.resolve()
        if target.is_dir(): target = target/'index.html'
        if not target.is_file() or DOCS.resolve() not in target.parents: bad.append(h); continue
        if u.fragment and target.suffix == '.html' and unquote(u.fragment) not in _ids(target): bad.append(h)
    assert not bad, f"{page}: links to files or anchors that do not exist: {sorted(set(bad))[:20]}"
    raw = b.execute_script(_RAW_SOURCE_JS)
    assert not raw, f"{page}: Markdown/LaTeX source in the visible text: {raw[:10]}"
    blocks, buttons = b.execute_script("return [document.querySelectorAll('main div.highlight').length, "
                                       "document.querySelectorAll('main div.highlight > button.copy-btn').length]")
    assert blocks == buttons, f"{page}: {blocks} code blocks, {buttons} copy buttons"
    # previous/next: the neighbours of the page in the sidebar (pages outside it have none)
    nav = b.execute_script("return Array.from(document.querySelectorAll('.sidebar nav.pages a')).map(a => a.href)")
    here = b.execute_script("return location.href.split('#')[0]")
    prev, nxt = (b.execute_script(f"var a = document.querySelector('main .pager a[rel={r}]'); return a ? a.href : null")
                 for r in ('prev', 'next'))
    if here in nav:
        i = nav.index(here)
        assert prev == (nav[i - 1] if i else None), f"{page}: previous link {prev}, the sidebar says {nav[i - 1] if i else None}"
        assert nxt == (nav[i + 1] if i + 1 < len(nav) else None), f"{page}: next link {nxt}"
    else: assert prev is nxt is None, f"{page} is not in the sidebar but has previous/next links"

def test_search_finds_a_page(browser, site, out_dir):
    "Typing 'Hadamard' in the sidebar's search box lists the Hadamard notebook's page; Enter opens the first result."
    from selenium.webdriver.common.keys import Keys
    target = page_of('00_hadamard.ipynb')
    b = _load(browser, urljoin(site, page_of('tutorials/quick_start.ipynb')))  # from a page in a subfolder: links are relative
    box = b.find_element('css selector', '.sidebar #search-input')
    box.send_keys('Hadamard')
    hrefs = _wait(b, lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('#search-results a')).map(a => a.href)") or None)
    assert any(urlparse(h).path.endswith('/' + target) for h in hrefs), hrefs
    for h in hrefs:  # every result is a page of the site, at an anchor it has
        u = urlparse(h); f = DOCS/unquote(u.path).lstrip('/')
        assert f.is_file() and (not u.fragment or unquote(u.fragment) in _ids(f)), h
    assert b.save_screenshot(str(out_dir/'docs_search.png'))
    box.clear(); box.send_keys('zzqx-no-such-word')
    _wait(b, lambda d: 'No page matches' in d.find_element('css selector', '#search-results').text)
    box.clear(); box.send_keys('NSNQuantCache', Keys.ENTER)
    _wait(b, lambda d: urlparse(d.current_url).path.endswith('/' + page_of('05_cache.ipynb')))

def test_copy_button_copies(browser, site):
    "A copy button puts its block's code on the clipboard (or says it could not): it answers the click."
    b = _load(browser, urljoin(site, page_of('00_hadamard.ipynb')))
    btn = next(e for e in b.find_elements('css selector', 'main .jp-CodeCell div.highlight > button.copy-btn')
               if e.is_displayed())  # not one folded under "Exported source"
    b.execute_script("arguments[0].scrollIntoView({block: 'center'})", btn)
    btn.click()
    _wait(b, lambda d: btn.text != 'Copy')
    assert btn.text == 'Copied', btn.text

def test_gallery_page_shows_every_figure_and_table(browser, site, out_dir):
    """The run-all notebook's page shows paper_figures/ (its cells have no outputs in git): every item of
    manifest.json under its own heading, every PNG loaded, every Markdown table as a table; it is in the sidebar."""
    man = json.loads((ROOT/'paper_figures'/'manifest.json').read_text())
    page = page_of('99_paper.ipynb')
    b = _load(browser, urljoin(site, page))
    assert b.find_elements('css selector', f'.sidebar nav a[href$="{page}"]'), 'the gallery page is not in the sidebar'
    imgs = b.execute_script("return Array.from(document.querySelectorAll('main img')).map(i => "
                            "[i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
    heads = b.execute_script("return Array.from(document.querySelectorAll('section.gallery h2')).map(h => "
                             "Array.from(h.childNodes).filter(n => !(n.classList && n.classList.contains('anchor-link'))).map(n => n.textContent).join('').trim())")
    for name, item in man.items():
        assert name in heads, f"no heading for {name} in the gallery: {heads}"
        for f in item['files']:
            if f.endswith('.png'):
                hit = [ok for src, ok in imgs if unquote(src).endswith('/' + f)]
                assert hit and all(hit), f"{f}: not shown, or not loaded: {hit}"
    n_md = sum(f.endswith('.md') for item in man.values() for f in item['files'])
    n_tab = len(b.find_elements('css selector', 'section.gallery table'))
    assert n_tab >= n_md, f"{n_tab} tables for the {n_md} Markdown tables of the manifest"
    b.execute_script("document.querySelector('section.gallery img').scrollIntoView({block: 'center'})")
    assert b.save_screenshot(str(out_dir/'docs_gallery.png'))

def test_titles_render_markdown(browser, site):
    "A description with `code` in it (the paper notebook's) shows it as code, in the page and in <title> as text."
    nb = json.loads((ROOT/'nbs'/'12_paper.ipynb').read_text())
    first = ''.join(next(c for c in nb['cells'] if c['cell_type'] == 'markdown')['source'])
    desc = next((l[1:].strip() for l in first.splitlines() if l.startswith('>')), '')
    if '`' not in desc: pytest.skip("the paper notebook's description has no code span")
    b = _load(browser, urljoin(site, page_of('12_paper.ipynb')))
    codes = b.find_elements('css selector', '.title-block .description code')
    assert codes and codes[0].text == re.search(r'`([^`]+)`', desc).group(1)
    assert '`' not in b.title

def test_repository_link_follows_settings(browser, site):
    "The sidebar links settings.ini's git_url, on every page; no link when it is empty."
    url = _settings().get('git_url', '').strip()
    b = _load(browser, urljoin(site, page_of('tutorials/quick_start.ipynb')))
    links = [a.get_attribute('href') for a in b.find_elements('css selector', '.sidebar a.repo-link')]
    assert links == ([url] if url else []), links
    if not url: assert 'href="/blob/' not in (DOCS/page_of('00_hadamard.ipynb')).read_text(), 'source links without a repository'

def test_screenshots(browser, site, out_dir):
    "The home page and a notebook page (the one with the most images but the gallery, which has its own), as PNGs in tests/_out/."
    cands = [p for p in pages() if p not in ('index.html', 'api.html', page_of('99_paper.ipynb')) and not p.startswith('_files/')]
    nb_page = max(cands, key=lambda p: ((DOCS/p).read_text(encoding='utf-8').count('<img'), p == 'codebook.html'))
    for page, name in (('index.html', 'docs_home.png'), (nb_page, 'docs_page.png')):
        b = _load(browser, urljoin(site, page))
        if page == nb_page:  # scroll to the first image, so the shot shows a rendered figure
            b.execute_script("var i = document.querySelector('main img'); if (i) i.scrollIntoView({block: 'center'});")
        assert b.save_screenshot(str(out_dir/name)), name
        assert (out_dir/name).stat().st_size > 10_000
    (out_dir/'docs_screenshots.json').write_text(json.dumps({'home': 'index.html', 'page': nb_page}))
