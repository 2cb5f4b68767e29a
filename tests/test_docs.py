"""The documentation site in a real browser: `tools/build_docs.py --static` builds `_docs/` (or finds it up to date), a local
HTTP server serves it, and headless Chromium (through selenium and chromedriver) opens every page.

Checks: every page answers HTTP 200 and has a title and a heading; the home page is the README and links every
notebook page; every image has loaded (`naturalWidth > 0`, which needs a browser); every relative link targets a
file of the site, and every `#anchor` of a link within the site exists on its page. Screenshots of the home page
and of a notebook page go to tests/_out/. Skipped, with the reason, when chromium, chromedriver or selenium is missing
(Debian: `apt-get install chromium chromium-driver`; pip: `selenium`).
"""
import functools, http.server, json, os, re, shutil, subprocess, sys, threading, urllib.request
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

def test_home_page_is_the_readme_and_lists_every_notebook(browser, site):
    nbs = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if not any(x.startswith(('_', '.')) for x in p.relative_to(ROOT/'nbs').parts))
    b = _load(browser, site)
    assert b.title.strip() and 'nsnquant' in b.title
    assert b.find_element('css selector', 'h1').text.strip()
    nav = [a.get_attribute('href') for a in b.find_elements('css selector', '.sidebar nav a')]
    assert len(nav) == len(nbs) + 1, f"the navigation lists {len(nav)} pages for {len(nbs)} notebooks + the API reference"
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

def test_screenshots(browser, site, out_dir):
    "The home page and a notebook page (the one with the most images), as PNGs in tests/_out/ for a look."
    cands = [p for p in pages() if p not in ('index.html', 'api.html') and not p.startswith('_files/')]
    nb_page = max(cands, key=lambda p: ((DOCS/p).read_text(encoding='utf-8').count('<img'), p == 'codebook.html'))
    for page, name in (('index.html', 'docs_home.png'), (nb_page, 'docs_page.png')):
        b = _load(browser, urljoin(site, page))
        if page == nb_page:  # scroll to the first image, so the shot shows a rendered figure
            b.execute_script("var i = document.querySelector('main img'); if (i) i.scrollIntoView({block: 'center'});")
        assert b.save_screenshot(str(out_dir/name)), name
        assert (out_dir/name).stat().st_size > 10_000
    (out_dir/'docs_screenshots.json').write_text(json.dumps({'home': 'index.html', 'page': nb_page}))
