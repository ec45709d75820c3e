/**
 * The PowerShell bodies WindowsInstaller runs, and the supervisor it installs. Every body is a
 * constant: the values it works on ($Root, $Version, $Node, …) are bound ahead of it as literals
 * by WinRmSession.runPowerShell, never spliced into the text. Conventions: only single quotes
 * delimit strings (so a reader — and the tests — can tell code from data at a glance), paths are
 * built with [IO.Path]::Combine, and system tools run by full path under %SystemRoot%.
 */

/** Helpers for the `current`/`previous` junctions and the etc ACL, prepended where needed. */
export const HELPERS = String.raw`
function Get-LinkTarget([string]$p) {
  if (-not [IO.Directory]::Exists($p)) { return $null }
  $item = Get-Item -LiteralPath $p -Force
  if ($item.LinkType -ne 'Junction') { throw ('{0} exists and is not a junction' -f $p) }
  return ((@($item.Target)[0]) -replace '^\\\?\?\\', '')
}
function Get-LinkVersion([string]$p) {
  $t = Get-LinkTarget $p
  if ($t) { return (Split-Path -Leaf $t) } else { return $null }
}
# A junction cannot be replaced in place: build the new one under a temporary name, then swap
# the names (two renames on one volume; readers see the old or the new target, or briefly none).
function Set-Junction([string]$link, [string]$target) {
  $suffix = [guid]::NewGuid().ToString('N')
  $tmp = $link + '.new-' + $suffix
  New-Item -ItemType Junction -Path $tmp -Target $target | Out-Null
  if ([IO.Directory]::Exists($link)) {
    $old = $link + '.old-' + $suffix
    Rename-Item -LiteralPath $link -NewName (Split-Path -Leaf $old)
    Rename-Item -LiteralPath $tmp -NewName (Split-Path -Leaf $link)
    [IO.Directory]::Delete($old, $false)
  } else {
    Rename-Item -LiteralPath $tmp -NewName (Split-Path -Leaf $link)
  }
}
# SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544) only, inheritance removed. SIDs, not
# names: account names are localized.
function Protect-Path([string]$p, [string]$rights) {
  $icacls = [IO.Path]::Combine($env:SystemRoot, 'System32', 'icacls.exe')
  & $icacls $p '/inheritance:r' '/grant:r' ('*S-1-5-18:' + $rights) ('*S-1-5-32-544:' + $rights) | Out-Null
  if ($LASTEXITCODE -ne 0) { throw ('icacls failed on {0} (exit {1})' -f $p, $LASTEXITCODE) }
}
function Stop-Agent([string]$root, [string]$taskName, [bool]$tree) {
  if (Get-ScheduledTask -TaskName $taskName -TaskPath '\' -ErrorAction SilentlyContinue) {
    Stop-ScheduledTask -TaskName $taskName -TaskPath '\'
  }
  # Stopping the task ends the supervisor; the agent it spawned is found by its command line.
  $needles = @([IO.Path]::Combine($root, 'bin', 'supervisor.cjs'), [IO.Path]::Combine($root, 'current', 'agent.mjs'))
  $procs = @(Get-CimInstance -ClassName Win32_Process -Filter 'Name = ''node.exe''' | Where-Object {
    $line = $_.CommandLine
    $line -and @($needles | Where-Object { $line.IndexOf($_, [StringComparison]::OrdinalIgnoreCase) -ge 0 }).Count -gt 0
  })
  $taskkill = [IO.Path]::Combine($env:SystemRoot, 'System32', 'taskkill.exe')
  foreach ($p in $procs) {
    if ($tree) { & $taskkill '/PID' $p.ProcessId '/T' '/F' | Out-Null }
    else { Stop-Process -Id $p.ProcessId -Force -ErrorAction SilentlyContinue }
  }
}
`;

const VERSIONS_JSON = String.raw`
$vdir = [IO.Path]::Combine($Root, 'versions')
$available = @()
if ([IO.Directory]::Exists($vdir)) { $available = @(Get-ChildItem -LiteralPath $vdir -Directory | ForEach-Object { $_.Name }) }
[pscustomobject]@{
  current = (Get-LinkVersion ([IO.Path]::Combine($Root, 'current')))
  previous = (Get-LinkVersion ([IO.Path]::Combine($Root, 'previous')))
  available = $available
} | ConvertTo-Json -Compress
`;

/** Finds node.exe (install dir first, then PATH) and its version, free space, and tar.exe. */
export const PREREQUISITES = String.raw`
$candidates = @([IO.Path]::Combine($Root, 'node', 'node.exe'))
$cmd = Get-Command -Name 'node.exe' -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
if ($cmd) { $candidates += $cmd.Path }
$node = $null
$version = $null
foreach ($c in $candidates) {
  if (-not [IO.File]::Exists($c)) { continue }
  try { $v = (& $c '--version' | Out-String).Trim() } catch { continue }
  if ($LASTEXITCODE -eq 0 -and $v) { $node = $c; $version = $v; break }
}
$qualifier = Split-Path -Path $Root -Qualifier
$drive = Get-PSDrive -Name $qualifier.TrimEnd(':') -PSProvider FileSystem -ErrorAction SilentlyContinue
if ($drive -and $drive.Free) { $free = [int64]$drive.Free }
else { $free = [int64](Get-Volume -DriveLetter $qualifier[0]).SizeRemaining }
[pscustomobject]@{
  node = $node; nodeVersion = $version; looked = ($candidates -join ', ')
  freeBytes = $free; drive = $qualifier
  tar = [IO.File]::Exists([IO.Path]::Combine($env:SystemRoot, 'System32', 'tar.exe'))
} | ConvertTo-Json -Compress
`;

/** Creates the layout (idempotent) and locks etc\ down to SYSTEM and Administrators. */
export const LAYOUT = String.raw`
foreach ($d in @('versions', 'tmp', 'data', 'packages', 'log', 'bin', 'etc')) {
  [void][IO.Directory]::CreateDirectory([IO.Path]::Combine($Root, $d))
}
Protect-Path ([IO.Path]::Combine($Root, 'etc')) '(OI)(CI)F'
`;

/** Whether versions\$Version was fully unpacked from the bundle with hash $Sha256 by an earlier run. */
export const BUNDLE_PRESENT = String.raw`
$marker = [IO.Path]::Combine($Root, 'versions', $Version, '.opsplane-bundle.sha256')
if ([IO.File]::Exists($marker) -and ([IO.File]::ReadAllText($marker).Trim() -eq $Sha256)) { 'present' } else { 'absent' }
`;

/** Unpacks $Archive into a fresh staging directory, then moves its top directory into versions\. */
export const UNPACK = String.raw`
$tar = [IO.Path]::Combine($env:SystemRoot, 'System32', 'tar.exe')
$target = [IO.Path]::Combine($Root, 'versions', $Version)
$stage = [IO.Path]::Combine($Root, 'tmp', ('unpack-' + [guid]::NewGuid().ToString('N')))
[void][IO.Directory]::CreateDirectory($stage)
try {
  & $tar '-xzf' $Archive '-C' $stage
  if ($LASTEXITCODE -ne 0) { throw ('tar.exe -xzf failed (exit {0})' -f $LASTEXITCODE) }
  $top = [IO.Path]::Combine($stage, $TopDir)
  if (-not [IO.File]::Exists([IO.Path]::Combine($top, $Entry))) { throw ('the bundle has no {0}\{1}' -f $TopDir, $Entry) }
  [IO.File]::WriteAllText([IO.Path]::Combine($top, '.opsplane-bundle.sha256'), $Sha256)
  # A directory without the marker (or with another hash) is a leftover of an interrupted run.
  if ([IO.Directory]::Exists($target)) { Remove-Item -LiteralPath $target -Recurse -Force }
  [IO.Directory]::Move($top, $target)
} finally {
  if ([IO.Directory]::Exists($stage)) { Remove-Item -LiteralPath $stage -Recurse -Force }
  if ([IO.File]::Exists($Archive)) { [IO.File]::Delete($Archive) }
}
`;

/** Moves the uploaded agent.yaml.new over agent.yaml (ReplaceFile: atomic) and re-applies the ACL. */
export const CONFIG_COMMIT = String.raw`
$etc = [IO.Path]::Combine($Root, 'etc')
$new = [IO.Path]::Combine($etc, 'agent.yaml.new')
$dest = [IO.Path]::Combine($etc, 'agent.yaml')
if ([IO.File]::Exists($dest)) { [IO.File]::Replace($new, $dest, [NullString]::Value) }
else { [IO.File]::Move($new, $dest) }
Protect-Path $dest 'F'
`;

/** Points current at versions\$Version (the old target becomes previous), then prints the versions. */
export const ACTIVATE =
  String.raw`
$versionDir = [IO.Path]::Combine($Root, 'versions', $Version)
if (-not [IO.File]::Exists([IO.Path]::Combine($versionDir, $Entry))) { throw ('version {0} is not unpacked on the device' -f $Version) }
$current = [IO.Path]::Combine($Root, 'current')
$old = Get-LinkVersion $current
if ($old -ne $Version) {
  if ($old) { Set-Junction ([IO.Path]::Combine($Root, 'previous')) ([IO.Path]::Combine($Root, 'versions', $old)) }
  Set-Junction $current $versionDir
}
` + VERSIONS_JSON;

export const VERSIONS = VERSIONS_JSON;

/**
 * Registers the scheduled task: at startup, as SYSTEM, no execution time limit (the default
 * would kill the agent after 72 h), restarted by Task Scheduler if launching it fails.
 */
export const SERVICE_INSTALL = String.raw`
$supervisor = [IO.Path]::Combine($Root, 'bin', 'supervisor.cjs')
$action = New-ScheduledTaskAction -Execute $Node -Argument ('"' + $supervisor + '"') -WorkingDirectory $Root
$trigger = New-ScheduledTaskTrigger -AtStartup
$principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
$settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -StartWhenAvailable -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) -MultipleInstances IgnoreNew
Register-ScheduledTask -TaskName $TaskName -TaskPath '\' -Action $action -Trigger $trigger -Principal $principal -Settings $settings -Description 'Opsplane agent (bin\supervisor.cjs keeps current\agent.mjs running)' -Force | Out-Null
`;

export const START = String.raw`Start-ScheduledTask -TaskName $TaskName -TaskPath '\'`;

export const STOP = String.raw`Stop-Agent $Root $TaskName $StopPackages`;

export const IS_RUNNING = String.raw`
$t = Get-ScheduledTask -TaskName $TaskName -TaskPath '\' -ErrorAction SilentlyContinue
if ($t -and [string]$t.State -eq 'Running') { 'running' } else { 'stopped' }
`;

/** Removes versions other than current/previous, staging leftovers and half-swapped junctions. */
export const PRUNE = String.raw`
$keep = @((Get-LinkVersion ([IO.Path]::Combine($Root, 'current'))), (Get-LinkVersion ([IO.Path]::Combine($Root, 'previous'))))
$vdir = [IO.Path]::Combine($Root, 'versions')
if ([IO.Directory]::Exists($vdir)) {
  Get-ChildItem -LiteralPath $vdir -Directory | Where-Object { $keep -notcontains $_.Name } | ForEach-Object { Remove-Item -LiteralPath $_.FullName -Recurse -Force }
}
Get-ChildItem -LiteralPath $Root -Force | Where-Object { $_.LinkType -eq 'Junction' -and $_.Name -match '\.(new|old)-[0-9a-f]{32}$' } | ForEach-Object { [IO.Directory]::Delete($_.FullName, $false) }
$tmp = [IO.Path]::Combine($Root, 'tmp')
if ([IO.Directory]::Exists($tmp)) { Get-ChildItem -LiteralPath $tmp -Force | ForEach-Object { Remove-Item -LiteralPath $_.FullName -Recurse -Force } }
`;

/** Stops everything (packages too), unregisters the task, deletes the junctions, then the tree. */
export const REMOVE_ALL = String.raw`
Stop-Agent $Root $TaskName $true
if (Get-ScheduledTask -TaskName $TaskName -TaskPath '\' -ErrorAction SilentlyContinue) {
  Unregister-ScheduledTask -TaskName $TaskName -TaskPath '\' -Confirm:$false
}
if ([IO.Directory]::Exists($Root)) {
  # Junctions first, without recursion: a recursive delete through one would empty its target.
  Get-ChildItem -LiteralPath $Root -Force | Where-Object { $_.LinkType -eq 'Junction' } | ForEach-Object { [IO.Directory]::Delete($_.FullName, $false) }
  Remove-Item -LiteralPath $Root -Recurse -Force
}
`;

export const LOG_TAIL = String.raw`
$log = [IO.Path]::Combine($Root, 'log', 'agent.log')
if ([IO.File]::Exists($log)) { (Get-Content -LiteralPath $log -Tail $Lines -Encoding UTF8) -join [Environment]::NewLine }
`;

/**
 * bin\supervisor.cjs. Task Scheduler's restart-on-failure covers a task that fails to launch,
 * not a program that exits later, and a task's output goes nowhere: this loop restarts the agent
 * with backoff and appends its stdout/stderr to log\agent.log (rotated at 10 MiB). It runs on
 * the node.exe that checkPrerequisites found, so no extra binary (nssm, winsw) is needed.
 */
export const SUPERVISOR_JS = [
  '// Opsplane agent supervisor: written by the platform (WindowsInstaller), run by the scheduled',
  '// task OpsplaneAgent as SYSTEM. Keeps ..\\current\\agent.mjs running and logs to ..\\log\\agent.log.',
  "'use strict';",
  "const { spawn } = require('node:child_process');",
  "const fs = require('node:fs');",
  "const path = require('node:path');",
  '',
  "const root = path.resolve(__dirname, '..');",
  "const logFile = path.join(root, 'log', 'agent.log');",
  'const MAX_LOG = 10 * 1024 * 1024;',
  'let delay = 1000;',
  '',
  'function note(msg) {',
  '  try {',
  "    fs.appendFileSync(logFile, '[supervisor ' + new Date().toISOString() + '] ' + msg + '\\n');",
  '  } catch (e) {}',
  '}',
  '',
  'function run() {',
  '  fs.mkdirSync(path.dirname(logFile), { recursive: true });',
  '  try {',
  "    if (fs.statSync(logFile).size > MAX_LOG) fs.renameSync(logFile, logFile + '.1');",
  '  } catch (e) {}',
  "  const out = fs.openSync(logFile, 'a');",
  '  const started = Date.now();',
  '  let again = false;',
  "  const args = [path.join(root, 'current', 'agent.mjs'), '--config', path.join(root, 'etc', 'agent.yaml')];",
  "  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', out, out], windowsHide: true });",
  '  fs.closeSync(out);',
  '  const restart = (why) => {',
  '    if (again) return;',
  '    again = true;',
  '    delay = Date.now() - started > 60000 ? 1000 : Math.min(delay * 2, 60000);',
  "    note(why + '; restarting in ' + delay + ' ms');",
  '    setTimeout(run, delay);',
  '  };',
  "  child.on('error', (e) => restart('could not start the agent: ' + e.message));",
  "  child.on('exit', (code, signal) => restart('agent exited with ' + (code !== null ? 'code ' + code : signal)));",
  '}',
  '',
  "note('starting');",
  'run();',
  '',
].join('\r\n');
