// A page built on upstream's unmodified fullstack client, @coji/durably-react 0.15.0, talking to
// durably_web's server mounted at /api/durably. playwright_tests/test_react_compat.py drives it.
//
// Everything the test checks is on the page twice: as text under data-testid attributes, and
// as structured data in window.__state (histories of what each hook returned over time).

import { createDurably } from '@coji/durably-react'
import { useEffect, useRef, useState } from 'react'
import { createRoot } from 'react-dom/client'

// The proxy turns a property key into the jobName it sends, so `durably.importCsv` posts
// jobName "importCsv": the server registers the jobs under these keys (their names differ).
const durably = createDurably({ api: '/api/durably' })

const state = {
  jobs: {},
  runs: {},
  watched: null,
  actions: [],
  renders: 0,
}
window.__state = state

function pushChanged(list, value) {
  const text = JSON.stringify(value)
  if (list.length === 0 || JSON.stringify(list[list.length - 1]) !== text) {
    list.push(value === undefined ? null : JSON.parse(text ?? 'null'))
  }
}

function JobPanel({ jobKey, input }) {
  const job = durably[jobKey].useJob()
  const [triggerError, setTriggerError] = useState(null)
  const history = useRef({ status: [], progress: [], runIds: [] })

  pushChanged(history.current.status, job.status)
  pushChanged(history.current.progress, job.progress)
  pushChanged(history.current.runIds, job.currentRunId)
  state.jobs[jobKey] = {
    status: job.status,
    progress: job.progress,
    output: job.output,
    error: job.error,
    logs: job.logs.map((l) => ({ runId: l.runId, level: l.level, message: l.message, data: l.data })),
    currentRunId: job.currentRunId,
    isLeased: job.isLeased,
    isTerminal: job.isTerminal,
    triggerError,
    history: history.current,
  }

  const onTrigger = async () => {
    setTriggerError(null)
    try {
      await job.trigger(input)
    } catch (err) {
      setTriggerError(String(err && err.message ? err.message : err))
    }
  }

  const p = job.progress
  return (
    <section data-testid={`job-${jobKey}`}>
      <h2>{jobKey}</h2>
      <button type="button" data-testid={`trigger-${jobKey}`} onClick={onTrigger}>
        trigger {jobKey}
      </button>
      <dl>
        <dt>run</dt>
        <dd data-testid={`run-id-${jobKey}`}>{job.currentRunId ?? ''}</dd>
        <dt>status</dt>
        <dd data-testid={`status-${jobKey}`}>{job.status ?? ''}</dd>
        <dt>progress</dt>
        <dd data-testid={`progress-${jobKey}`}>
          {p ? `${p.current}/${p.total ?? '?'}${p.message ? ` ${p.message}` : ''}` : ''}
        </dd>
        <dt>output</dt>
        <dd data-testid={`output-${jobKey}`}>{job.output ? JSON.stringify(job.output) : ''}</dd>
        <dt>error</dt>
        <dd data-testid={`error-${jobKey}`}>{job.error ?? triggerError ?? ''}</dd>
        <dt>logs</dt>
        <dd data-testid={`logs-${jobKey}`}>{job.logs.map((l) => l.message).join(' | ')}</dd>
      </dl>
    </section>
  )
}

function RunsTable({ name, options, onWatch }) {
  const { runs, isLoading, error, refresh } = durably.useRuns(options)
  const actions = durably.useRunActions()
  const progressSeen = useRef({})

  for (const run of runs) {
    progressSeen.current[run.id] ??= []
    pushChanged(progressSeen.current[run.id], run.progress)
  }
  state.runs[name] = { runs, isLoading, error, progressSeen: progressSeen.current }
  window.__runActions = actions

  const act = (action, runId) => async () => {
    const entry = { table: name, action, runId, ok: null, result: null, error: null }
    state.actions.push(entry)
    try {
      if (action === 'cancel') entry.result = (await actions.cancel(runId)) ?? null
      if (action === 'retrigger') entry.result = await actions.retrigger(runId)
      if (action === 'delete') entry.result = (await actions.deleteRun(runId)) ?? null
      if (action === 'steps') entry.result = await actions.getSteps(runId)
      if (action === 'get') entry.result = await actions.getRun(runId)
      entry.ok = true
    } catch (err) {
      entry.ok = false
      entry.error = String(err && err.message ? err.message : err)
    }
  }

  return (
    <section data-testid={`runs-${name}`}>
      <h2>
        runs: {name} <button type="button" onClick={() => refresh()}>refresh</button>
      </h2>
      <div data-testid={`runs-error-${name}`}>{error ?? ''}</div>
      <div data-testid={`runs-loading-${name}`}>{isLoading ? 'loading' : 'idle'}</div>
      <table>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id} data-testid={`run-${name}-${run.id}`} data-status={run.status}>
              <td>{run.id}</td>
              <td>{run.jobName}</td>
              <td data-testid={`run-status-${name}-${run.id}`}>{run.status}</td>
              <td>{run.progress ? `${run.progress.current}/${run.progress.total ?? '?'}` : ''}</td>
              <td>step {run.currentStepIndex}</td>
              <td>
                {['cancel', 'retrigger', 'delete', 'steps', 'get'].map((action) => (
                  <button
                    type="button"
                    key={action}
                    data-testid={`${action}-${name}-${run.id}`}
                    onClick={act(action, run.id)}
                  >
                    {action}
                  </button>
                ))}
                <button
                  type="button"
                  data-testid={`watch-${name}-${run.id}`}
                  onClick={() => onWatch(run.id)}
                >
                  watch
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function Watched({ runId }) {
  // useRun/useLogs only send the runId; the job key in front of them does not matter.
  const run = durably.importCsv.useRun(runId)
  const { logs } = durably.importCsv.useLogs(runId)
  state.watched = {
    runId,
    status: run.status,
    output: run.output,
    error: run.error,
    progress: run.progress,
    logs: logs.map((l) => l.message),
  }
  return (
    <section data-testid="watched">
      <h2>watched run {runId}</h2>
      <div data-testid="watched-status">{run.status ?? ''}</div>
      <div data-testid="watched-output">{run.output ? JSON.stringify(run.output) : ''}</div>
    </section>
  )
}

function App() {
  const [watched, setWatched] = useState(null)
  state.renders += 1
  useEffect(() => {
    document.body.dataset.ready = 'yes'
  }, [])
  return (
    <main>
      <h1>durably_web × @coji/durably-react 0.15.0</h1>
      <JobPanel jobKey="importCsv" input={{ rows: 5, delay: 0.15 }} />
      <JobPanel jobKey="slowImport" input={{ rows: 60, delay: 0.25 }} />
      {/* Filtered by the job keys (repeated jobName params) with realtime updates. One table only:
          every hook holds an EventSource open and Chromium allows 6 HTTP/1.1 connections per host. */}
      <RunsTable
        name="runs"
        options={{ jobName: ['importCsv', 'slowImport'], pageSize: 20 }}
        onWatch={setWatched}
      />
      {watched ? <Watched runId={watched} /> : null}
    </main>
  )
}

createRoot(document.getElementById('root')).render(<App />)
