import { CoreApp } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';
import React from 'react';

import { LokalQuery } from '../types';
import { isValidStep, QueryOptions } from './QueryOptions';

function setup(query: Partial<LokalQuery>, app = CoreApp.Explore) {
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  const utils = render(
    <QueryOptions query={{ refId: 'A', expr: '', ...query }} onChange={onChange} onRunQuery={onRunQuery} app={app} />
  );
  return { onChange, onRunQuery, ...utils };
}

describe('QueryOptions', () => {
  it('switches the query type and runs', () => {
    const { onChange, onRunQuery } = setup({ expr: 'rate({job="a"}[5m])' });
    fireEvent.click(screen.getByLabelText('Instant'));
    expect(onChange).toHaveBeenCalledWith(expect.objectContaining({ queryType: 'instant' }));
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('offers no live tail in alert rules', () => {
    setup({ expr: 'rate({job="a"}[5m])' }, CoreApp.UnifiedAlerting);
    expect(screen.queryByLabelText('Live')).not.toBeInTheDocument();
  });

  it('sets the line limit and direction of a log query', () => {
    const { onChange } = setup({ expr: '{job="a"}' });
    const limit = screen.getByLabelText('Line limit');
    fireEvent.change(limit, { target: { value: '500' } });
    fireEvent.blur(limit);
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ maxLines: 500 }));
    fireEvent.click(screen.getByLabelText('Forward'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ direction: 'forward' }));
  });

  it('rejects a line limit that is not a number', () => {
    const { onChange } = setup({ expr: '{job="a"}' });
    const limit = screen.getByLabelText('Line limit');
    fireEvent.change(limit, { target: { value: 'lots' } });
    fireEvent.blur(limit);
    expect(onChange).not.toHaveBeenCalled();
    expect(screen.getByText('A whole number of lines')).toBeInTheDocument();
  });

  it('sets legend and step of a metric query', () => {
    const { onChange } = setup({ expr: 'rate({job="a"}[5m])' });
    const legend = screen.getByLabelText('Legend');
    fireEvent.change(legend, { target: { value: '{{level}}' } });
    fireEvent.blur(legend);
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ legendFormat: '{{level}}' }));
    const step = screen.getByLabelText('Step');
    fireEvent.change(step, { target: { value: '30s' } });
    fireEvent.blur(step);
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ step: '30s' }));
  });

  it('shows values changed from outside', () => {
    const { rerender } = setup({ expr: '{job="a"}', maxLines: 10 });
    expect(screen.getByLabelText('Line limit')).toHaveValue('10');
    rerender(
      <QueryOptions
        query={{ refId: 'A', expr: '{job="a"}', maxLines: 20 }}
        onChange={jest.fn()}
        onRunQuery={jest.fn()}
      />
    );
    expect(screen.getByLabelText('Line limit')).toHaveValue('20');
  });

  it.each([
    ['', true],
    ['30s', true],
    ['1h30m', true],
    ['$__interval', true],
    ['${step}', true],
    ['30', false],
    ['fast', false],
  ])('step %j valid: %s', (s, want) => {
    expect(isValidStep(s)).toBe(want);
  });
});
