"""Packaging for nsnquant; everything is read from settings.ini (nbdev 2). No pkg_resources."""
from configparser import ConfigParser
from pathlib import Path
import setuptools

here = Path(__file__).parent
cfg = ConfigParser(delimiters=['='])
cfg.read(here/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

for k in 'version description keywords author author_email license min_python lib_name user git_url'.split():
    if k not in cfg: raise KeyError(f'settings.ini lacks `{k}`')

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['Planning', 'Pre-Alpha', 'Alpha', 'Beta', 'Production/Stable', 'Mature', 'Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()
lic = licenses[cfg['license'].lower()]
min_python = cfg['min_python']

def _reqs(key): return cfg.get(key, '').split()

long_description = (here/'README.md').read_text(encoding='utf-8') if (here/'README.md').exists() else cfg['description']

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    license=lic[0],
    classifiers=['Development Status :: ' + cfg['status'] + ' - ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'License :: ' + lic[1],
                 'Natural Language :: ' + cfg['language'].title()] +
                ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['nsnquant', 'nsnquant.*']),
    include_package_data=True,
    package_data={'nsnquant': ['codebooks/*.safetensors', 'codebooks/*.json', 'csrc/*.c']},
    install_requires=_reqs('requirements'),
    extras_require={'dev': _reqs('dev_requirements'), 'triton': _reqs('triton_requirements'), 'paper': _reqs('paper_requirements'),
                    'models': _reqs('models_requirements'), 'eval': _reqs('eval_requirements'),
                    'all': sum((_reqs(k) for k in ('dev_requirements', 'triton_requirements', 'paper_requirements', 'models_requirements',
                                                   'eval_requirements')), [])},
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + min_python,
    long_description=long_description,
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
